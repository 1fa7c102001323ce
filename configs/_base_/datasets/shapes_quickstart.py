"""The generated shapes dataset of `detzoo quickstart` (detzoo.data.synthetic): its classes, where
the CLI writes it, and the data dict every quickstart config uses around its own pipelines."""
from detzoo.data import CocoDataset

classes = ("circle", "square", "triangle", "star")
data_root = "data/quickstart/"


def shapes_data(train_pipeline, test_pipeline, samples_per_gpu=4):
    """``data`` for the COCO-format shapes dataset; no loader worker (decoding a 320 px JPEG costs
    ~2 ms, a worker process would only compete with the two compute threads for the two cores)."""
    def split(ann, pipeline):
        return dict(type=CocoDataset, ann_file=data_root + ann, img_prefix=data_root + "images/",
                    classes=classes, pipeline=pipeline)

    return dict(samples_per_gpu=samples_per_gpu, workers_per_gpu=0, train=split("train.json", train_pipeline),
                val=split("val.json", test_pipeline), test=split("val.json", test_pipeline))
