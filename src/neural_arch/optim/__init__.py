"""Layer 4: optimizers and learning-rate schedulers, shaped like ``torch.optim``.

    import neural_arch.optim as optim
    opt = optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)
    sched = optim.lr_scheduler.WarmupCosineLR(opt, warmup_steps=100, total_steps=5000)
"""

from neural_arch.optim import lr_scheduler
from neural_arch.optim.adadelta import Adadelta
from neural_arch.optim.adafactor import Adafactor
from neural_arch.optim.adagrad import Adagrad
from neural_arch.optim.adam import Adam, AdamW
from neural_arch.optim.adamax import Adamax
from neural_arch.optim.asgd import ASGD
from neural_arch.optim.lbfgs import LBFGS
from neural_arch.optim.lion import Lion
from neural_arch.optim.muon import Muon
from neural_arch.optim.nadam import NAdam
from neural_arch.optim.optimizer import Optimizer
from neural_arch.optim.radam import RAdam
from neural_arch.optim.rmsprop import RMSprop
from neural_arch.optim.rprop import Rprop
from neural_arch.optim.sgd import SGD
from neural_arch.optim.sparse_adam import SparseAdam

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "Lion", "RMSprop", "Adagrad", "lr_scheduler"]
__all__ += ["Adadelta", "Adafactor", "Adamax", "ASGD", "LBFGS", "Muon", "NAdam", "RAdam", "Rprop", "SparseAdam"]
