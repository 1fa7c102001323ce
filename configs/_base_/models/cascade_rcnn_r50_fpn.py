"""Cascade R-CNN with a ResNet-50 FPN: MMDetection 2.x defaults (configs/_base_/models/cascade_rcnn_r50_fpn.py).

Three class-agnostic box heads trained at IoU 0.5 / 0.6 / 0.7 with coder stds halving from stage
to stage, stage loss weights 1 / 0.5 / 0.25; the RPN uses a smooth-L1 box loss (beta 1/9),
ignores anchors crossing the image border and hands 2000 proposals to the cascade in training.
"""
import copy

from detzoo.models.detectors import CascadeRCNN
from detzoo.models.losses import CrossEntropyLoss, SmoothL1Loss
from detzoo.models.roi_heads import CascadeRoIHead, Shared2FCBBoxHead
from detzoo.models.task_modules import DeltaXYWHBBoxCoder, MaxIoUAssigner, RandomSampler

from .faster_rcnn_r50_fpn import model as _faster_rcnn

# a copy: another base of the same config may import the Faster R-CNN model too
model = copy.deepcopy(_faster_rcnn)


def _box_head(stds):
    return dict(type=Shared2FCBBoxHead, in_channels=256, fc_out_channels=1024, roi_feat_size=7, num_classes=80,
                bbox_coder=dict(type=DeltaXYWHBBoxCoder, target_means=[0.0, 0.0, 0.0, 0.0], target_stds=stds),
                reg_class_agnostic=True,
                loss_cls=dict(type=CrossEntropyLoss, use_sigmoid=False, loss_weight=1.0),
                loss_bbox=dict(type=SmoothL1Loss, beta=1.0, loss_weight=1.0))


def _stage_cfg(iou):
    return dict(assigner=dict(type=MaxIoUAssigner, pos_iou_thr=iou, neg_iou_thr=iou, min_pos_iou=iou,
                              match_low_quality=False, ignore_iof_thr=-1),
                sampler=dict(type=RandomSampler, num=512, pos_fraction=0.25, neg_pos_ub=-1, add_gt_as_proposals=True),
                pos_weight=-1)


model["type"] = CascadeRCNN
model["rpn_head"]["loss_bbox"] = dict(type=SmoothL1Loss, beta=1.0 / 9.0, loss_weight=1.0)
model["roi_head"] = dict(
    type=CascadeRoIHead,
    num_stages=3,
    stage_loss_weights=[1, 0.5, 0.25],
    bbox_roi_extractor=model["roi_head"]["bbox_roi_extractor"],
    bbox_head=[_box_head([0.1, 0.1, 0.2, 0.2]), _box_head([0.05, 0.05, 0.1, 0.1]),
               _box_head([0.033, 0.033, 0.067, 0.067])],
)
model["train_cfg"]["rpn"]["allowed_border"] = 0
model["train_cfg"]["rpn_proposal"].update(nms_pre=2000, max_per_img=2000)
model["train_cfg"]["rcnn"] = [_stage_cfg(0.5), _stage_cfg(0.6), _stage_cfg(0.7)]
