"""Every differentiable op, grouped by kind: one definition each (forward, ``_backward`` closure, rule text).

elementwise.py, reduce.py, shape.py and cnn.py hold mixin classes whose methods become Tensor's; compare.py
(``== < ...``, not differentiable) and numpy_protocol.py (numpy calls on Tensors) are mixins too:
``class Tensor(ElementwiseOps, ReduceOps, ShapeOps, CNNOps, CompareOps, NumpyProtocol)`` in tensor.py. They never
import tensor.py and build results with ``self.from_op``. loss.py holds functions and sits above the engine.
"""
