"""``visualize_file``: the image of a class, file out, on the same session conventions as ``dream_file``.

Checked before any work: the output, the model, the layer, the class (an
index, or a name looked up in the model's labels file), the settings.
Progress goes to a :class:`Reporter`, the record into the output's
metadata, and the run resumes after its last finished octave.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from ..dream import defaults as nb
from ..errors import DeepDreamError
from .config import LBFGS_FIELDS, LbfgsOptions, _same
from .netspec import NetSource
from .reporting import Reporter

INITS = ("zero", "noise")
# Classes this tool never renders, by model: open_nsfw's class 1 is "not safe for work".
REFUSED_CLASSES: Mapping[str, Tuple[int, ...]] = {"open_nsfw": (1,)}


@dataclass(frozen=True)
class VisualizeConfig:
    """Everything that decides a class visualisation, checked when made (one DeepDreamError line).

    ``klass`` is a class index or a name from the labels; ``layer`` defaults
    to the net's class-score layer (the last InnerProduct before its
    Softmax); ``size`` is (width, height), default the native input size;
    ``init`` "zero", "noise" or an image path. The regularisers take
    Yosinski et al.'s set 3 unless given (see :mod:`deepdream_caffe.dream.visualize`).
    """

    klass: Union[int, str] = 0
    net: NetSource = NetSource()
    layer: Optional[str] = None
    size: Optional[Tuple[int, int]] = None
    init: Union[str, Path] = "zero"
    iters: int = 200
    octaves: Optional[int] = None
    octave_scale: float = nb.OCTAVE_SCALE
    step_size: float = nb.STEP_SIZE
    step_end: Optional[float] = None
    momentum: float = 0.0
    jitter: int = 0
    l2: float = 0.0
    decay: Optional[float] = None
    blur_sigma: Optional[float] = None
    blur_every: Optional[int] = None
    norm_pct: Optional[float] = None
    contrib_pct: Optional[float] = None
    paper_set: int = 3
    mode: str = "ascent"
    score: str = nb.CLASS_SCORE
    lbfgs: LbfgsOptions = LbfgsOptions()
    labels: Optional[Path] = None
    seed: Optional[int] = None
    quality: int = nb.JPEG_QUALITY
    gpu: Optional[int] = None
    verbose: bool = False
    names: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False, hash=False)

    def __post_init__(self) -> None:
        n = self.names.get
        if isinstance(self.klass, bool) or not isinstance(self.klass, (int, str)) or \
                (isinstance(self.klass, int) and self.klass < 0) or (isinstance(self.klass, str) and not self.klass.strip()):
            raise DeepDreamError(f"{n('klass', 'klass')} must be a class index >= 0 or a class name, got {self.klass!r}")
        for key, low in (("iters", 1), ("jitter", 0), ("quality", 1)):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise DeepDreamError(f"{n(key, key)} must be a whole number >= {low}, got {v!r}")
        if self.quality > 100:
            raise DeepDreamError(f"{n('quality', 'quality')} must be in [1, 100], got {self.quality}")
        if self.octaves is not None and (isinstance(self.octaves, bool) or not isinstance(self.octaves, int)
                                         or self.octaves < 1):
            raise DeepDreamError(f"{n('octaves', 'octaves')} must be at least 1, got {self.octaves!r}")
        for key, ok in (("octave_scale", lambda v: v > 1), ("step_size", lambda v: v > 0)):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or not ok(v):
                raise DeepDreamError(f"{n(key, key)} must be {'above 1' if key == 'octave_scale' else 'positive'}, "
                                     f"got {v!r}")
        if self.step_end is not None and (isinstance(self.step_end, bool) or not isinstance(self.step_end, (int, float))
                                          or not math.isfinite(self.step_end) or self.step_end <= 0):
            raise DeepDreamError(f"{n('step_end', 'step_end')} must be positive, got {self.step_end!r}")
        if isinstance(self.momentum, bool) or not isinstance(self.momentum, (int, float)) or \
                not math.isfinite(self.momentum) or not 0 <= self.momentum < 1:
            raise DeepDreamError(f"{n('momentum', 'momentum')} must be in [0, 1), got {self.momentum!r}")
        if self.size is not None:
            if len(self.size) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in self.size):
                raise DeepDreamError(f"{n('size', 'size')} must be two whole numbers W H, got {self.size!r}")
            object.__setattr__(self, "size", (int(self.size[0]), int(self.size[1])))
        if not isinstance(self.init, Path) and self.init not in INITS:
            object.__setattr__(self, "init", Path(self.init))
        if self.mode not in ("ascent", "lbfgs"):
            raise DeepDreamError(f"{n('mode', 'mode')} must be ascent or lbfgs, got {self.mode!r}")
        if self.score not in nb.CLASS_SCORES:
            raise DeepDreamError(f"{n('score', 'score')} must be {' or '.join(nb.CLASS_SCORES)}, got {self.score!r}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)
                                      or not 0 <= self.seed < 2**32):
            raise DeepDreamError(f"{n('seed', 'seed')} must be in [0, 2**32), got {self.seed!r}")
        self.regularizers().check({k: n(k, k) for k in ("l2", "decay", "blur_sigma", "blur_every", "norm_pct",
                                                        "contrib_pct")})
        if self.gpu is not None and (isinstance(self.gpu, bool) or not isinstance(self.gpu, int) or self.gpu < 0):
            raise DeepDreamError(f"{n('gpu', 'gpu')} must be a device id >= 0, got {self.gpu!r}")
        # L-BFGS settings this run would ignore without a word are refused (NaN counts as set): all of them
        # in ascent mode, and the data term's (it is the class score here) in L-BFGS mode.
        ignored = [k for k in LBFGS_FIELDS if (self.mode != "lbfgs" or k in ("objective", "gain"))
                   and not _same(getattr(self.lbfgs, k), getattr(LbfgsOptions(), k))]
        if ignored:
            flag = n(ignored[0], ignored[0])
            if self.mode != "lbfgs":
                raise DeepDreamError(f"{flag} is for {n('mode', 'mode')} lbfgs")
            raise DeepDreamError(f"{flag} is not used by visualize: its L-BFGS maximises the class score")
        if self.mode == "lbfgs":
            from ..dream.lbfgs import check_lbfgs_params  # noqa: PLC0415

            o = self.lbfgs
            check_lbfgs_params(objective="l2", gain=o.gain, tv_weight=o.tv_weight, tv_beta=o.tv_beta,
                               alpha_weight=o.alpha_weight, alpha=o.alpha, maxiter=o.maxiter, maxfun=o.maxfun,
                               names=dict(self.names))

    def regularizers(self) -> Any:
        """The :class:`~deepdream_caffe.dream.visualize.Regularizers`: the paper's set, with any value given."""
        from ..dream.visualize import Regularizers  # noqa: PLC0415

        base = Regularizers.yosinski(self.paper_set, self.l2)
        given = {k: getattr(self, k) for k in ("decay", "blur_sigma", "blur_every", "norm_pct", "contrib_pct")
                 if getattr(self, k) is not None}
        return Regularizers(**{**asdict(base), **given})


def read_labels(path: Path) -> List[str]:
    """One class name per line (Caffe's synset_words.txt format: an optional WordNet id, then names)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DeepDreamError(f"cannot read the labels file {path}: {getattr(e, 'strerror', None) or e}") from None
    return [line for line in lines if line.strip()]


def resolve_class(klass: Union[int, str], labels: Optional[List[str]]) -> Tuple[int, Optional[str]]:
    """(index, label) of ``klass``: an index (or digits) as given, a name looked up in ``labels``."""
    from ..dream.visualize import class_index  # noqa: PLC0415

    if isinstance(klass, int) or klass.strip().isdigit():
        k = int(klass)
        return k, (labels[k].strip() if labels is not None and k < len(labels) else None)
    if labels is None:
        raise DeepDreamError(f"class {klass!r} is a name, but this model has no labels file; give the index "
                             "or --labels FILE")
    k = class_index(labels, klass)
    return k, labels[k].strip()


def visualize_file(output: Path, config: VisualizeConfig, *, reporter: Optional[Reporter] = None) -> Dict[str, Any]:
    """Visualise ``config.klass`` into ``output`` (atomic; metadata as for ``dream``); returns the record."""
    import numpy as np  # noqa: PLC0415

    from ..io.checkpoint import FileCheckpoint, state_path  # noqa: PLC0415
    from ..io.image import save_image  # noqa: PLC0415
    from ..io.metadata import file_sha1  # noqa: PLC0415
    from ..net.caffe_env import import_caffe  # noqa: PLC0415
    from .netspec import resolve_net  # noqa: PLC0415
    from .pipeline import check_output, load_input  # noqa: PLC0415
    from .record import output_metadata, resume_key  # noqa: PLC0415

    rep = reporter or Reporter()
    cfg = config
    output = Path(output)
    init_path = cfg.init if isinstance(cfg.init, Path) else None
    check_output(output, [init_path])
    import_caffe(verbose=cfg.verbose)
    from ..net.access import check_layer  # noqa: PLC0415
    from ..net.classifier import classifier_layer, native_size  # noqa: PLC0415
    from ..net.devices import select_device  # noqa: PLC0415
    from ..net.loading import _NamesOnly, load_net  # noqa: PLC0415
    from ..net.prototxt import read_prototxt  # noqa: PLC0415
    from ..net.referee import check_structure  # noqa: PLC0415
    from ..dream.visualize import upward_octaves, visualize_class  # noqa: PLC0415
    from ..dream.octaves import octave_sizes  # noqa: PLC0415

    spec = resolve_net(cfg.net, quiet=rep.quiet)
    param = read_prototxt(spec.prototxt)
    check_structure(param, spec.prototxt)
    layer = cfg.layer or classifier_layer(param)
    check_layer(_NamesOnly(param), layer)
    native = native_size(param)
    labels_path = cfg.labels or getattr(spec, "labels", None)
    labels = read_labels(labels_path) if labels_path is not None else None
    k, label = resolve_class(cfg.klass, labels)
    if k in REFUSED_CLASSES.get(spec.model or "", ()):
        raise DeepDreamError(f"class {k} of {spec.model} is not rendered by this tool (see README)")
    h, w = (cfg.size[1], cfg.size[0]) if cfg.size is not None else native
    n, note = upward_octaves(h, w, native, cfg.octaves, cfg.octave_scale)
    if cfg.mode == "lbfgs" and (h, w) != native:
        raise DeepDreamError(f"{cfg.names.get('mode', 'mode')} lbfgs works at the net's native size "
                             f"{native[1]}x{native[0]} only; leave out the size")
    init: Any = cfg.init
    if init_path is not None:
        init = load_input(init_path)
    if note:
        rep.note(note)
    device = select_device(cfg.gpu)
    net = load_net(spec.prototxt, spec.weights, mean=spec.mean, channel_swap=spec.channel_swap, end=layer,
                   fast=True, weights_sha1=spec.weights_sha1)
    from ..dream.gradient import check_objective  # noqa: PLC0415
    from ..dream.visualize import class_objective  # noqa: PLC0415

    check_objective(net, class_objective(layer, k, score=cfg.score))  # a class past the layer's count, before any work
    if spec.weights_sha1 is None:
        from dataclasses import replace  # noqa: PLC0415

        spec = replace(spec, weights_sha1=net.weights_sha1)
    if cfg.seed is None:
        import secrets  # noqa: PLC0415

        seed = secrets.randbelow(2**32)
        rep.seed_chosen(seed)
    else:
        seed = cfg.seed
    rng = np.random.RandomState(seed)
    reg = cfg.regularizers()
    lbfgs = None
    if cfg.mode == "lbfgs":
        o = cfg.lbfgs
        lbfgs = {"tv_weight": o.tv_weight, "tv_beta": o.tv_beta, "alpha_weight": o.alpha_weight,
                 "alpha": o.alpha, "maxiter": o.maxiter, "maxfun": o.maxfun}
    params = {"class": k, "label": label, "layer": layer, "score": cfg.score, "size": [w, h], "octaves": n,
              "octave_scale": cfg.octave_scale, "init": str(cfg.init), "mode": cfg.mode,
              "iters": cfg.iters, "step_size": cfg.step_size, "step_end": cfg.step_end,
              "momentum": cfg.momentum, "jitter": cfg.jitter,
              "regularizers": asdict(reg), "lbfgs": lbfgs,
              "mean": list(spec.mean), "channel_swap": list(spec.channel_swap)}
    input_sha1 = file_sha1(init_path)
    key = resume_key(params, seed, input_sha1, spec.weights_sha1, (h, w))
    checkpoint = FileCheckpoint(state_path(output), key, rng)
    steps = cfg.lbfgs.maxiter if cfg.mode == "lbfgs" else cfg.iters
    bar = rep.progress(octave_sizes(h, w, n, cfg.octave_scale), steps, "visualize")

    def on_step(octave: int, step: int, score: float) -> None:
        if step < steps:
            bar.update(octave, step, extra=f"score={score:.4g}")

    try:
        img, info = visualize_class(net, k, layer=layer, native=native, size=(h, w), init=init, iter_n=cfg.iters,
                                    octave_n=n, octave_scale=cfg.octave_scale, step_size=cfg.step_size,
                                    jitter=cfg.jitter, reg=reg, rng=rng, callback=on_step, checkpoint=checkpoint,
                                    lbfgs=lbfgs, momentum=cfg.momentum, step_end=cfg.step_end, score=cfg.score)
    finally:
        bar.close()
    if checkpoint.resumed_from is not None:
        rep.note(f"resumed after octave {checkpoint.resumed_from + 1} from {checkpoint.path}")
        info["resumed_after_octave"] = checkpoint.resumed_from + 1
    meta = output_metadata("visualize", params, seed, spec, device, init_path, input_sha1,
                           extra={"visualize": _jsonable(info)})
    save_image(output, img, meta, quality=cfg.quality)
    checkpoint.remove()
    rep.note(f"wrote {output} (class {k}{f' {label}' if label else ''}, score {info['final_score']:.4g})")
    return info


def _jsonable(info: Dict[str, Any]) -> Dict[str, Any]:
    """The record without the per-step score lists' bulk: first, last, and count per octave."""
    out = dict(info)
    if "scores" in out:
        out["scores"] = [{"first": s[0], "last": s[-1], "steps": len(s) - 1} for s in out["scores"]]
    return out
