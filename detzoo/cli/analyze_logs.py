"""detzoo analyze-logs {cal-train-time,plot-curve} LOG.json [...]

    detzoo analyze-logs cal-train-time work_dirs/x/20240101_000000.log.json [--window 100 500]
    detzoo analyze-logs plot-curve LOG.json [LOG2.json ...] --keys loss_cls loss_bbox --out curve.png
"""
from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="task", metavar="TASK")
    sub.required = True
    cal = sub.add_parser("cal-train-time", help="average iteration time and images/s",
                         description="average iteration time per epoch and images/s over a window of "
                                     "global iterations (default 100-500)")
    cal.add_argument("logs", nargs="+", metavar="LOG.json", help="training logs (.log.json)")
    cal.add_argument("--include-outliers", action="store_true",
                     help="also count the first logged interval of each epoch")
    cal.add_argument("--window", type=int, nargs=2, default=[100, 500], metavar=("START", "END"),
                     help="global iterations START+1..END give the throughput (default 100 500)")
    cal.add_argument("--batch-size", type=int,
                     help="images per iteration over all GPUs (default: imgs_per_s of the log, else "
                          "the log's config samples_per_gpu x world size)")
    plot = sub.add_parser("plot-curve", help="plot losses / metrics against iteration or epoch",
                          description="plot train keys against the global iteration and val keys "
                                      "(bbox_mAP, ...) against the epoch")
    plot.add_argument("logs", nargs="+", metavar="LOG.json", help="training logs (.log.json)")
    plot.add_argument("--keys", nargs="+", default=["loss"], help="keys to plot (default loss)")
    plot.add_argument("--legend", nargs="+", help="one name per log and key (default LOGNAME_KEY)")
    plot.add_argument("--title", help="figure title")
    plot.add_argument("--out", required=True, help="picture to write (.png, .jpg, .pdf, .svg)")


def run(args: argparse.Namespace) -> int:
    from detzoo.tools.log_analysis import cal_train_time, format_train_time, load_log, plot_curve

    logs = [load_log(path) for path in args.logs]
    if args.task == "cal-train-time":
        for path, log in zip(args.logs, logs):
            figures = cal_train_time(log, window=tuple(args.window), include_outliers=args.include_outliers,
                                     batch_size=args.batch_size)
            print(format_train_time(path, figures))
        return 0
    series = plot_curve(logs, args.keys, args.out, legend=args.legend, title=args.title)
    print(f"{len(series)} curve(s) plotted to {args.out}")
    return 0
