"""The top-level models/ folder (the zoo's manifests, where Caffe keeps them) ships as deepdream_caffe.models.

Everything else is in pyproject.toml; setuptools' declarative config cannot
map a folder outside the package into it.
"""
from setuptools import find_namespace_packages, find_packages, setup

MODELS = ["deepdream_caffe.models"] + [f"deepdream_caffe.models.{name}" for name in find_namespace_packages("models")]

setup(
    packages=find_packages(include=["deepdream_caffe*"]) + MODELS,
    package_dir={"deepdream_caffe.models": "models"},
    # Only the manifests and readmes: weights downloaded into a clone's models/NAME/ stay out.
    package_data={**{name: ["README.md", "model.toml", "readme.md"] for name in MODELS},
                  "deepdream_caffe.app": ["templates/atlas/*"]},
)
