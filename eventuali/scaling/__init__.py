"""Scale-out: leases in the store, leader election and partitioned subscriptions.

See docs/scaling.md.  Everything here is built on the Backend protocol's
optimistic concurrency (an append with an exact expected version is a
compare-and-set), so it works on every engine without engine code.
"""

from .leases import Lease, LeaseLostError, partition_of
from .partitions import PartitionedSubscription, load_partitioned_read_model, partition_name

__all__ = ["Lease", "LeaseLostError", "PartitionedSubscription", "load_partitioned_read_model",
           "partition_name", "partition_of"]
