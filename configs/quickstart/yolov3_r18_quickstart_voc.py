"""The YOLOv3 quickstart on a Pascal VOC-format copy of the shapes dataset, evaluated with VOC
mAP@0.5 (VOC2007 11-point AP, difficult objects ignored).

`detzoo quickstart --config yolov3_r18_quickstart_voc` writes the generated images both as COCO
and as VOCdevkit/VOC2007 (Annotations/*.xml, JPEGImages/, ImageSets/Main/{train,val}.txt) and
trains from the VOC copy; the model is `yolov3_r18_quickstart`'s, trained 15 epochs instead of 12
(the COCO-style quickstart reaches mAP_50 0.77 at 12; VOC mAP@0.5 here is the 11-point AP).
"""
from detzoo.data import VOCDataset

from .yolov3_r18_quickstart import *  # noqa: F401,F403
from .yolov3_r18_quickstart import classes, test_pipeline, train_pipeline

voc_root = "data/quickstart/VOCdevkit/VOC2007/"
data = dict(
    samples_per_gpu=4,
    workers_per_gpu=0,
    train=dict(type=VOCDataset, ann_file=voc_root + "ImageSets/Main/train.txt", img_prefix=voc_root,
               classes=classes, pipeline=train_pipeline),
    val=dict(type=VOCDataset, ann_file=voc_root + "ImageSets/Main/val.txt", img_prefix=voc_root,
             classes=classes, pipeline=test_pipeline),
    test=dict(type=VOCDataset, ann_file=voc_root + "ImageSets/Main/val.txt", img_prefix=voc_root,
              classes=classes, pipeline=test_pipeline),
)
max_epochs = 15
runner = dict(type="EpochBasedRunner", max_epochs=max_epochs)
evaluation = dict(interval=max_epochs, metric="mAP")
