class DatasetError(RuntimeError):
    """A dataset is missing, incomplete or corrupt; the message says where and what to do."""
