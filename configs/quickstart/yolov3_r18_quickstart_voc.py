"""The YOLOv3 quickstart on a Pascal VOC-format copy of the shapes dataset, evaluated with VOC
mAP@0.5 (VOC2007 11-point AP, difficult objects ignored).

`detzoo quickstart --config yolov3_r18_quickstart_voc` writes the generated images both as COCO
and as VOCdevkit/VOC2007 (Annotations/*.xml, JPEGImages/, ImageSets/Main/{train,val}.txt) and
trains from the VOC copy; the model is `yolov3_r18_quickstart`'s, trained 20 epochs instead of 12.
Measured (seed 0, 2 cores): VOC07 11-point mAP@0.5 0.769 after 15 epochs (719 s), 0.838 after 20
(975 s; circle 0.883, square 0.783, triangle 0.847, star 0.840).
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
max_epochs = 20
runner = dict(type="EpochBasedRunner", max_epochs=max_epochs)
evaluation = dict(interval=max_epochs, metric="mAP")
