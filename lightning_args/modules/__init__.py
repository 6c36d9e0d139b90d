"""What a researcher subclasses or uses inside a model: ``ConfiguredModule``, ``KeyedModule``
with losses and metrics by key, small metric functions and ``TensorBatches``."""
