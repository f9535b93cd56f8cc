"""The net: importing pycaffe, devices, prototxt and weight checks, shapes, surgery, loading, blob access.

Everything here speaks Caffe; nothing here knows about dreams.
"""
