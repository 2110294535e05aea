"""The pure core of the stream processor: sled motion in, reps/sets/sessions/adherence/alerts out.

No Faust, Kafka, MQTT or SQL imports here: plain functions and small classes with
explicit, JSON-serialisable state, fed one frame/event at a time (see DOMAIN.md).
The Faust app in ``stream/app`` decodes, calls :class:`MachineProcessor` and
:class:`PatientTracker`, and writes what they return.
"""

from stream.core.adherence import PatientState, PatientTracker
from stream.core.processor import MachineProcessor, MachineState
from stream.core.settings import CoreSettings

__all__ = ["CoreSettings", "MachineProcessor", "MachineState", "PatientState", "PatientTracker"]
