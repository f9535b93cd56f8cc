"""Many dreams on a Dask cluster: one task per (input, setting), resumable, with a contact sheet.

``plan`` turns inputs and settings into tasks (seeds, output names, the key
that says an output is finished); ``worker`` is what runs in each worker
process (its cache of loaded nets); ``cluster`` starts a LocalCluster or
connects to a scheduler, splitting the cores between workers; ``run``
submits the tasks and collects the results; ``sheet`` draws the grid.
"""
from ...errors import import_extra
from .plan import BatchTask, Setting, image_seed, plan_tasks
from .run import BatchReport, BatchReporter, run_batch

# All of batch runs on Dask: without the extra, one line says so before any work.
import_extra("distributed", "batch")

__all__ = ["BatchTask", "Setting", "image_seed", "plan_tasks", "BatchReport", "BatchReporter", "run_batch"]
