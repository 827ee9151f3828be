"""Export of fitted models to other runtimes: ONNX (:mod:`.onnx`)."""
