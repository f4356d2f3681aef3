"""Every differentiable op, grouped by kind: one definition each (forward, ``_backward`` closure, rule text).

elementwise.py, reduce.py, shape.py, cnn.py and cnn_grad.py (the ops a CNN op's recorded backward is made of) hold
mixin classes whose methods become Tensor's; compare.py (``== < ...``, not differentiable) and numpy_protocol.py
(numpy calls on Tensors) are mixins too, as is creation.py beside this package: ``class Tensor(ElementwiseOps,
ReduceOps, ShapeOps, CNNOps, CNNGradOps, CompareOps, NumpyProtocol, Creation)`` in tensor.py. They never import
tensor.py and build results with ``self.from_op``. common.py holds their axis helpers, facts.py each op's declared
facts, contract.py the members of Tensor they use. The losses are functions above the engine (losses.py).
"""
