"""``visualize_file``: the image of a class, or of a channel or neuron from noise, file out, on the same
session conventions as ``dream_file``.

Checked before any work: the output, the model, the layer, the class (an
index, or a name looked up in the model's labels file) or the channel, the settings.
Progress goes to a :class:`Reporter`, the record into the output's
metadata, and the run resumes after its last finished octave.

The command line's parser reads :class:`VisualizeConfig`'s defaults, so what
a run needs (numpy, the net, :mod:`~deepdream_caffe.dream.visualize`) is
imported inside the functions that run.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from ..dream import defaults as nb
from ..dream.params import Ascent, Lbfgs, Octaves, Optvis, SettingError, check
from ..errors import DeepDreamError
from ..io.files import MAX_LABELS_BYTES, read_text
from ..io.hashing import file_sha1
from ..net.caffe_env import import_caffe
from .netspec import NetSource, resolve_net
from .reporting import Reporter

INITS = ("zero", "noise")
# Simonyan's ascent's own settings, which the optvis loop (Adam from noise, no octaves) refuses rather than ignore.
SIMONYAN_ONLY = ("step_size", "step_end", "momentum", "jitter", "paper_set", "decay", "blur_sigma", "blur_every",
                 "norm_pct", "contrib_pct", "init", "octave_n", "octave_scale", "l2")
# Classes this tool never renders, by model: open_nsfw's class 1 is "not safe for work".
REFUSED_CLASSES: Mapping[str, Tuple[int, ...]] = {"open_nsfw": (1,)}


@dataclass(frozen=True)
class VisualizeConfig:
    """Everything that decides a class visualisation, checked when made (one SettingError line).

    ``klass`` is a class index or a name from the labels; ``layer`` defaults
    to the net's class-score layer (the last InnerProduct before its
    Softmax); ``size`` is (width, height), default the native input size;
    ``init`` "zero", "noise" or an image path; ``octave_n=None`` takes as
    many octaves as fit. ``lbfgs`` (its priors and bounds) solves each octave
    with L-BFGS-B instead of the ascent. The regularisers take Yosinski et
    al.'s set 3 unless given (see :mod:`deepdream_caffe.dream.visualize`).

    ``channel`` or ``neuron`` ("LAYER:C": channel C of LAYER, or its centre
    unit) visualises that unit from noise instead of a class (``klass`` is
    then None), the way ``optvis`` says (lucid's; default :class:`Optvis`);
    ``optvis`` with a class climbs the class score that way rather than by
    Simonyan's ascent.
    """

    klass: Optional[Union[int, str]] = 0
    channel: Optional[str] = None
    neuron: Optional[str] = None
    optvis: Optional[Optvis] = None
    net: NetSource = NetSource()
    layer: Optional[str] = None
    size: Optional[Tuple[int, int]] = None
    init: Union[str, Path] = "zero"
    iter_n: int = nb.CLASS_ITER_N
    octave_n: Optional[int] = None
    octave_scale: float = Octaves.octave_scale
    step_size: float = Ascent.step_size
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
    score: str = nb.CLASS_SCORE
    lbfgs: Optional[Lbfgs] = None
    labels: Optional[Path] = None
    seed: Optional[int] = None
    quality: int = nb.JPEG_QUALITY
    gpu: Optional[int] = None
    verbose: bool = False

    def __post_init__(self) -> None:
        if self.channel is not None and self.neuron is not None:
            raise SettingError("give {channel} or {neuron}, not both")
        if self.unit() is not None:
            parse_unit(self.unit()[1], self.unit()[0])
            object.__setattr__(self, "klass", None)
            if self.optvis is None:
                object.__setattr__(self, "optvis", Optvis())
            if self.layer is not None:
                raise SettingError(f"{{layer}} is for a class; the {self.unit()[0]}'s layer is in "
                                   f"{{{self.unit()[0]}}} LAYER:C")
        elif isinstance(self.klass, bool) or not isinstance(self.klass, (int, str)) or \
                (isinstance(self.klass, int) and self.klass < 0) or (isinstance(self.klass, str) and not self.klass.strip()):
            raise SettingError(f"{{klass}} must be a class index >= 0 or a class name, got {self.klass!r}")
        check(self, "iter_n", int, lambda v: v >= 1, "at least 1")
        check(self, "jitter", int, lambda v: 0 <= v < 2**31 - 1, ">= 0 (and below 2**31 - 1)")  # as a dream's
        check(self, "quality", int, lambda v: 1 <= v <= 100, "in [1, 100]")
        if self.octave_n is not None:
            check(self, "octave_n", int, lambda v: v >= 1, "at least 1")
        check(self, "octave_scale", float, lambda v: v > 1, "above 1")
        check(self, "step_size", float, lambda v: v > 0, "positive")
        if self.step_end is not None:
            check(self, "step_end", float, lambda v: v > 0, "positive")
        check(self, "momentum", float, lambda v: 0 <= v < 1, "in [0, 1)")
        if self.size is not None:
            if len(self.size) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in self.size):
                raise SettingError(f"{{size}} must be two whole numbers W H, got {self.size!r}")
            object.__setattr__(self, "size", (int(self.size[0]), int(self.size[1])))
        if not isinstance(self.init, Path) and self.init not in INITS:
            object.__setattr__(self, "init", Path(self.init))
        if self.score not in nb.CLASS_SCORES:
            raise SettingError(f"{{score}} must be {' or '.join(nb.CLASS_SCORES)}, got {self.score!r}")
        if self.seed is not None:
            check(self, "seed", int, lambda v: 0 <= v < 2**32, "in [0, 2**32)")
        self.regularizers()
        if self.gpu is not None:
            check(self, "gpu", int, lambda v: v >= 0, "a device id >= 0")
        if self.optvis is not None:
            simonyan = [k for k in SIMONYAN_ONLY if getattr(self, k) != getattr(VisualizeConfig, k)]
            if self.lbfgs is not None or simonyan:
                raise SettingError(f"{{{simonyan[0] if simonyan else 'mode'}}} is for Simonyan's ascent on a "
                                   "class; optvis climbs with Adam from noise at one size")
        if self.lbfgs is not None:  # its data term is the class score: the settings of another would be ignored
            unused = [k for k in ("objective", "gain") if getattr(self.lbfgs, k) != getattr(Lbfgs, k)]
            if unused:
                raise SettingError(f"{{{unused[0]}}} is not used by visualize: its L-BFGS maximises the class score")

    @property
    def mode(self) -> str:
        """``"ascent"``, ``"lbfgs"`` or ``"optvis"``."""
        return "optvis" if self.optvis is not None else "ascent" if self.lbfgs is None else "lbfgs"

    def unit(self) -> Optional[Tuple[str, str]]:
        """("channel" or "neuron", "LAYER:C") when a unit is visualised, else None."""
        return ("channel", self.channel) if self.channel is not None else \
            ("neuron", self.neuron) if self.neuron is not None else None

    def draws_at_random(self) -> bool:
        """Whether the run draws anything from its seed: the ascent's jitter or the noise it starts from."""
        return self.mode == "optvis" or self.init == "noise" or (self.lbfgs is None and self.jitter > 0)

    def regularizers(self) -> Any:
        """The :class:`~deepdream_caffe.dream.visualize.Regularizers`: the paper's set, with any value given."""
        from ..dream.visualize import Regularizers

        base = Regularizers.yosinski(self.paper_set, self.l2)
        given = {k: getattr(self, k) for k in ("decay", "blur_sigma", "blur_every", "norm_pct", "contrib_pct")
                 if getattr(self, k) is not None}
        return Regularizers(**{**asdict(base), **given})


def parse_unit(text: str, kind: str = "channel") -> Tuple[str, int]:
    """"LAYER:C" -> (LAYER, C); a layer name may hold colons itself (the last one splits). ``kind`` names
    the setting in the error."""
    layer, sep, c = str(text).rpartition(":")
    if not (sep and layer and c.strip().isdigit()):
        raise SettingError(f"{{{kind}}} must be LAYER:C, C a channel index >= 0; got {text!r}")
    return layer, int(c)


def read_labels(path: Path) -> List[str]:
    """One class name per line (Caffe's synset_words.txt format: an optional WordNet id, then names)."""
    lines = read_text(path, "labels file", MAX_LABELS_BYTES).splitlines()
    return [line for line in lines if line.strip()]


def resolve_class(klass: Union[int, str], labels: Optional[List[str]]) -> Tuple[int, Optional[str]]:
    """(index, label) of ``klass``: an index (or digits) as given, a name looked up in ``labels``."""
    from ..dream.visualize import class_index

    if isinstance(klass, int) or klass.strip().isdigit():
        k = int(klass)
        return k, (labels[k].strip() if labels is not None and k < len(labels) else None)
    if labels is None:
        raise DeepDreamError(f"class {klass!r} is a name, but this model has no labels file; give the index "
                             "or --labels FILE")
    k = class_index(labels, klass)
    return k, labels[k].strip()


def _check_extent(cfg: "VisualizeConfig", h: int, w: int) -> None:
    """Refuse, from arithmetic, a canvas that memory cannot hold (the image, its gradient and its step, in
    float32) and a blur wider than the canvas (its kernel alone would be as large as the number)."""
    from ..net.referee import memory_limit

    need = 3 * 3 * 4 * h * w
    if need > memory_limit():
        raise SettingError(f"{{size}} {w}x{h} needs about {need / 2**30:.3g} GiB for the canvas alone; "
                           f"this machine has {memory_limit() / 2**30:.3g} GiB")
    if cfg.blur_sigma is not None and cfg.blur_sigma > max(h, w):
        raise SettingError(f"{{blur_sigma}} {cfg.blur_sigma:g} is wider than the {w}x{h} canvas")


def visualize_file(output: Path, config: VisualizeConfig, *, reporter: Optional[Reporter] = None) -> Dict[str, Any]:
    """Visualise ``config``'s class or unit into ``output`` (atomic; metadata as for ``dream``); returns the record."""
    import numpy as np

    from ..dream.arguments import check_kinds
    from ..io.image import save_image
    from .pipeline import check_output, choose_seed, load_input, net_files
    from .record import output_metadata
    from .run import FileCheckpoint, output_lock, run_key, state_path

    check_kinds(output=(output, os.PathLike, "a path"), config=(config, VisualizeConfig, "a VisualizeConfig"),
                reporter=(reporter, (Reporter, None), "a Reporter or None"))
    rep = reporter or Reporter()
    cfg = config
    output = Path(output)
    init_path = cfg.init if isinstance(cfg.init, Path) else None
    check_output(output, [init_path, cfg.labels, *net_files(cfg)])
    with output_lock(output):  # a second run writing the same output is refused meanwhile
        import_caffe(verbose=cfg.verbose)
        from ..dream.octaves import octave_sizes
        from ..dream.visualize import upward_octaves
        from ..net.access import check_layer
        from ..net.classifier import classifier_layer, native_size
        from ..net.devices import select_device
        from ..net.loading import _NamesOnly, load_net
        from ..net.prototxt import read_prototxt
        from ..net.referee import check_structure

        spec = resolve_net(cfg.net, quiet=rep.quiet)
        param = read_prototxt(spec.prototxt)
        check_structure(param, spec.prototxt, allow_python_layers=cfg.net.allow_python_layers)
        unit = cfg.unit()
        c = None
        if unit is not None:
            layer, c = parse_unit(unit[1], unit[0])
        else:
            layer = cfg.layer or classifier_layer(param)
        check_layer(_NamesOnly(param), layer)
        native = native_size(param)
        k, label = None, None
        if unit is None:
            labels_path = cfg.labels or getattr(spec, "labels", None)
            labels = read_labels(labels_path) if labels_path is not None else None
            k, label = resolve_class(cfg.klass, labels)  # type: ignore[arg-type]
            if k in REFUSED_CLASSES.get(spec.model or "", ()):
                raise DeepDreamError(f"class {k} of {spec.model} is not rendered by this tool (see README)")
        h, w = (cfg.size[1], cfg.size[0]) if cfg.size is not None else native
        _check_extent(cfg, h, w)
        if unit is not None:
            from ..dream.sizing import check_size_fits

            check_size_fits(param, layer, h, w)
        n, note = (1, None) if unit is not None else \
            upward_octaves(h, w, native, 1 if cfg.mode == "optvis" else cfg.octave_n, cfg.octave_scale)
        if cfg.mode == "lbfgs" and (h, w) != native:
            raise SettingError(f"{{mode}} lbfgs works at the net's native size "
                                 f"{native[1]}x{native[0]} only; leave out the size")
        init: Any = cfg.init
        if init_path is not None:
            init = load_input(init_path)
        if note:
            rep.note(note)
        device = select_device(cfg.gpu)
        net = load_net(spec.prototxt, spec.weights, mean=spec.mean, channel_swap=spec.channel_swap, end=layer,
                       fast=True, weights_sha1=spec.weights_sha1, allow_python_layers=cfg.net.allow_python_layers)
        from ..dream.gradient import check_objective
        from ..dream.objectives import channel, neuron
        from ..dream.visualize import class_objective

        if unit is not None:
            from ..net.access import input_blob, raw_net

            objective = (channel if unit[0] == "channel" else neuron)(layer, c)
            input_blob(raw_net(net)).reshape(1, 3, h, w)  # the unit's range is checked at the canvas's size
        else:
            _check_class(net, layer, k, REFUSED_CLASSES.get(spec.model or "", ()))  # type: ignore[arg-type]
            objective = class_objective(layer, k, score=cfg.score)  # type: ignore[arg-type]
        check_objective(net, objective)
        if spec.weights_sha1 is None:
            spec = replace(spec, weights_sha1=net.weights_sha1)
        seed = choose_seed(cfg, rep) if cfg.draws_at_random() else cfg.seed
        rng = np.random.RandomState(seed or 0)  # with nothing random it is never drawn from
        params: Dict[str, Any] = {"class": k, "label": label, "layer": layer, "size": [w, h], "mode": cfg.mode,
                                  "iters": cfg.iter_n, "mean": list(spec.mean), "channel_swap": list(spec.channel_swap)}
        if unit is None:
            params["score"] = cfg.score
        if cfg.optvis is not None:
            from ..dream.optvis import describe

            params.update(unit=unit[0] if unit else "class", channel=c, optvis=describe(cfg.optvis))
        else:
            params.update(octaves=n, octave_scale=cfg.octave_scale, init=str(cfg.init), step_size=cfg.step_size,
                          step_end=cfg.step_end, momentum=cfg.momentum, jitter=cfg.jitter,
                          regularizers=asdict(cfg.regularizers()),
                          lbfgs=None if cfg.lbfgs is None else cfg.lbfgs.solver_settings())
        input_sha1 = file_sha1(init_path)
        steps = cfg.iter_n if cfg.lbfgs is None else cfg.lbfgs.maxiter
        bar = rep.progress(octave_sizes(h, w, n, cfg.octave_scale), steps, "visualize")

        def on_step(octave: int, step: int, score: float) -> None:
            if step < steps:
                bar.update(octave, step, extra=f"score={score:.4g}")

        key = run_key(params, seed, input_sha1, weights=spec.weights_sha1, shape=(h, w))
        if cfg.optvis is not None:  # its blocks of steps are not octaves: it says where it resumed itself
            checkpoint = FileCheckpoint(state_path(output), key, rng,
                                        note=lambda m: None if m.startswith("resumed after octave") else rep.note(m))
        else:
            checkpoint = FileCheckpoint(state_path(output), key, rng)
        try:
            if cfg.optvis is not None:
                from ..dream.optvis import render_vis

                img, info = render_vis(net, objective, size=(h, w), iter_n=cfg.iter_n, settings=cfg.optvis,
                                       native=None if unit else native, rng=rng, callback=on_step, checkpoint=checkpoint)
                if info["resumed_after_step"]:
                    rep.note(f"resumed after step {info['resumed_after_step']} from {checkpoint.path}")
            else:
                from ..dream.visualize import visualize_class

                img, info = visualize_class(net, k, layer=layer, native=native, size=(h, w), init=init,  # type: ignore[arg-type]
                                            iter_n=cfg.iter_n, octave_n=n, octave_scale=cfg.octave_scale,
                                            step_size=cfg.step_size, jitter=cfg.jitter, reg=cfg.regularizers(), rng=rng,
                                            callback=on_step, checkpoint=checkpoint, lbfgs=cfg.lbfgs,
                                            momentum=cfg.momentum, step_end=cfg.step_end, score=cfg.score)
        finally:
            bar.close()
        if cfg.optvis is None and checkpoint.resumed_from is not None:
            rep.note(f"resumed after octave {checkpoint.resumed_from + 1} from {checkpoint.path}")
            info["resumed_after_octave"] = checkpoint.resumed_from + 1
        meta = output_metadata("visualize", params, seed, spec, device, init_path, input_sha1,
                               extra={"visualize": _jsonable(info)})
        save_image(output, img, meta, quality=cfg.quality)
        checkpoint.remove()
        what = f"{unit[0]} {layer}:{c}" if unit else f"class {k}{f' {label}' if label else ''}"
        rep.note(f"wrote {output} ({what}, score {info['final_score']:.4g})")
        return info


def _check_class(net: Any, layer: str, k: int, refused: Tuple[int, ...]) -> None:
    """``layer`` gives one score per class, and class ``k`` is one this tool renders (else one line)."""
    from ..net.access import end_blob, raw_net

    shape = tuple(end_blob(raw_net(net), layer).data.shape)
    if len(shape) < 2 or any(d != 1 for d in shape[2:]):
        raise SettingError(f"{{layer}} '{layer}' gives {'x'.join(map(str, shape[1:]))} values, not one score per "
                           "class; name a class-score layer (by default the last InnerProduct before the Softmax)")
    rendered = [c for c in range(shape[1]) if c not in refused]
    if k not in rendered:
        raise SettingError(f"{{klass}} {k} is out of range: this tool renders "
                           f"{'class' if len(rendered) == 1 else 'classes'} {_spans(rendered)} of layer '{layer}'")


def _spans(values: List[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0..2, 5"``."""
    spans: List[List[int]] = []
    for v in values:
        if spans and v == spans[-1][1] + 1:
            spans[-1][1] = v
        else:
            spans.append([v, v])
    return ", ".join(str(a) if a == b else f"{a}..{b}" for a, b in spans) or "none"


def _jsonable(info: Dict[str, Any]) -> Dict[str, Any]:
    """The record without the per-step score lists' bulk: first, last, and count per octave."""
    out = dict(info)
    if "scores" in out:
        out["scores"] = [{"first": s[0], "last": s[-1], "steps": len(s) - 1} for s in out["scores"]]
    return out
