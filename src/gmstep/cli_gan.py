"""The ``gmstep gan`` commands (train, sample, import the conditional GAN); see :mod:`gmstep.gan`."""

from __future__ import annotations

import argparse
from typing import Any

from . import gan


def _cmd_train(args: argparse.Namespace) -> int:
    path = gan.train(
        epochs=args.epochs,
        classes=gan.parse_classes(args.classes),
        device=args.device,
        cache_dir=args.cache,
        seed=args.seed,
        progress=True,
        max_batches=args.max_batches,
        data_dir=args.data_dir,
    )
    print(f"checkpoint: {path}")
    return 0


def _cmd_sample(args: argparse.Namespace) -> int:
    out = gan.sample_grid(
        args.out, classes=gan.parse_classes(args.classes), per_class=args.per_class,
        cache_dir=args.cache, seed=args.seed,
    )
    print(f"wrote {out}")
    return 0


def _cmd_import(args: argparse.Namespace) -> int:
    out = gan.import_authors(args.path, cache_dir=args.cache)
    print(f"imported {args.path} -> {out} (sha256 {gan.checkpoint_hash(out)[:12]})")
    return 0


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``gan train``, ``gan sample`` and ``gan import`` to an argparse subparsers object."""
    cache_help = (
        "cache directory; files go to DIR/cgan/ (default: $GMSTEP_CACHE, "
        "$XDG_CACHE_HOME/gmstep or ~/.cache/gmstep)"
    )
    group = subparsers.add_parser(
        "gan",
        help="train or sample the conditional GAN (the 'cgan' Fashion-MNIST source)",
        description="The paper's conditional GAN (InfoGAN architecture) on Fashion-MNIST.",
    )
    sub = group.add_subparsers(dest="gan_command", metavar="{train,sample,import}", required=True)

    t = sub.add_parser(
        "train",
        help="train (or resume training) the CGAN",
        description="Train the CGAN; a checkpoint is saved after every epoch and an existing "
        "one with the same settings is resumed.",
    )
    t.add_argument("--epochs", type=int, default=gan.DEFAULT_EPOCHS,
                   help=f"total number of epochs (default {gan.DEFAULT_EPOCHS})")
    t.add_argument("--classes", default=None, metavar="C,C,...",
                   help="comma-separated classes 0..9 to train (default: all ten)")
    t.add_argument("--device", default="auto",
                   help="auto (CUDA when present, else the CPU; the default), cpu or cuda")
    t.add_argument("--cache", default=None, metavar="DIR", help=cache_help)
    t.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    t.add_argument("--data-dir", default=None, metavar="DIR",
                   help="Fashion-MNIST directory (default: $GMSTEP_FASHION_MNIST, then Debian's)")
    t.add_argument("--max-batches", type=int, default=None, metavar="B",
                   help="at most B batches per epoch (quick checks)")
    t.set_defaults(func=_cmd_train)

    s = sub.add_parser(
        "sample",
        help="write a PNG grid of generated images",
        description="Write a PNG grid of CGAN samples, one row per class.",
    )
    s.add_argument("--out", default="cgan-samples.png", metavar="FILE.png",
                   help="output file (default cgan-samples.png)")
    s.add_argument("--classes", default=None, metavar="C,C,...",
                   help="comma-separated classes (default: every trained class)")
    s.add_argument("--per-class", type=int, default=10, metavar="N",
                   help="images per class (default 10)")
    s.add_argument("--cache", default=None, metavar="DIR", help=cache_help)
    s.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    s.set_defaults(func=_cmd_sample)

    i = sub.add_parser(
        "import",
        help="convert the authors' generator state dict into gmstep's checkpoint",
        description="Read a PyTorch state dict of the authors' CGAN generator (keys fc.0, fc.1, "
        "fc.3, fc.4, deconv.0, deconv.1, deconv.3; 10 classes, 62-dim noise, 28 x 28) with the "
        "weights-only loader, check every shape and write it as DIR/cgan/cgan.pt.",
    )
    i.add_argument("path", metavar="PATH", help="the state dict file (.pt or .pth)")
    i.add_argument("--cache", default=None, metavar="DIR", help=cache_help)
    i.set_defaults(func=_cmd_import)
    return group
