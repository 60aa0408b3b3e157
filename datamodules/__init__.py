"""LightningDataModules: plain values in (root, batch size, seeds), batches out.

Each says which inputs it gives with the class attribute `input_kind` ("image" or "tokens") and,
after `setup()`, the shapes a model needs in `dims` (in_channels, image_size, num_classes, ...).
"""


class DatasetError(RuntimeError):
    """A dataset is missing, incomplete or corrupt; the message says where and what to do
    (train.py prints it without a traceback and exits with status 2)."""
