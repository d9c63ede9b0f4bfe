"""Distributed queries: the splitter, the plan wire format and a local simulator.

``split(plan)`` cuts an optimized plan into agent fragments and a broker plan;
``encode``/``decode`` carry plans as versioned msgpack; ``run_distributed`` runs a split plan
over several catalogs in one process (what the broker and agents do, without the network).
"""

from engine.distributed.exchange import Exchange, Inputs
from engine.distributed.explain import explain_distributed
from engine.distributed.simulate import run_broker, run_distributed, run_fragments
from engine.distributed.split import DistributedPlan, Fragment, Placement, placement, split
from engine.distributed.wire import WIRE_VERSION, decode, encode

__all__ = ["Exchange", "Inputs", "explain_distributed", "run_broker", "run_distributed",
           "run_fragments", "DistributedPlan", "Fragment", "Placement", "placement", "split",
           "WIRE_VERSION", "decode", "encode"]
