"""ukey's measured-boot policy for Keylime's verifier.

A ukey host's boot log (io.ukey.Boot.EventLog, sent by ukey-keylime-agent as the measured-boot
list) holds one EV_IPL event per component ukeyd measured: its data is "entity/component", its
digests the component's measurement, its PCR the entity's register. This policy re-checks the
paper's rule centrally, against the reference state that `ukeyctl policy export --keylime`
writes from the signed ukey policy:

  * every event is an entity and component of the policy, on that entity's register;
  * every component's SHA-256 is the policy's (a writable component, a VM's own disk, is ukeyd's
    to vouch for by the state it sealed: its digest is not checked here);
  * an entity's first event comes only after its parent was trusted: every component of the
    parent measured, each as expected (the root needs nothing).

A failure names the entity and the component. Keylime's verifier replays the log against the
quoted PCRs before it calls this, so what the log says is what the TPM holds.

Install: put this file on the verifier's PYTHONPATH and set, in verifier.conf,
    measured_boot_imports = ['ukey_policy']
    measured_boot_policy_name = ukey
then add each host with `keylime_tenant -c add ... --mb-policy refstate.json`.
"""

import typing

from keylime.mba.elchecking import policies, tests

# The PCRs Keylime replays from the log: all but IMA's 10 (and 16, the agent's key binding). The
# firmware's events (0-7, and its loaders') are replayed with ukey's; ukey's own are read from
# the registers its entities use (14-15 on a Keylime host).
REPLAYED_PCRS = frozenset(range(0, 10)) | frozenset(range(11, 16))
ROOT = "root"
EARLIER_SESSION = "earlier session: "


def _event_text(event: typing.Dict[str, typing.Any]) -> typing.Optional[str]:
    """The event's data as text: tpm2_eventlog prints EV_IPL data as {"String": ...}."""
    data = event.get("Event")
    if isinstance(data, dict):
        data = data.get("String")
    elif isinstance(data, str):
        try:
            data = bytes.fromhex(data).decode("utf-8")
        except ValueError:
            return None
    if not isinstance(data, str):
        return None
    return data.rstrip("\x00")


def _sha256(event: typing.Dict[str, typing.Any]) -> typing.Optional[str]:
    for digest in event.get("Digests") or []:
        if digest.get("AlgorithmId") == "sha256":
            return str(digest.get("Digest", "")).lower()
    return None


class UkeyChain(tests.Test):
    def __init__(self, entities: typing.Dict[str, typing.Any]):
        self.entities = entities

    def why_not(self, globs: tests.Globals, subject: tests.Data) -> str:
        if not isinstance(subject, dict) or not isinstance(subject.get("events"), list):
            return "the boot log has no events"
        measured: typing.Dict[str, typing.Dict[str, str]] = {}
        registers = {entity.get("register") for entity in self.entities.values()}
        if registers & {10, 16}:
            return "the refstate places an entity on PCR 10 or 16, which Keylime does not check from the log"
        for event in subject["events"]:
            pcr = event.get("PCRIndex")
            kind = event.get("EventType")
            if pcr not in registers or kind == "EV_NO_ACTION":
                continue  # the firmware's events: Keylime replays them; ukey reads only its registers
            if kind != "EV_IPL":
                return f"event {event.get('EventNum')} on PCR {pcr}, a ukey register, is {kind}, not a ukey measurement"
            text = _event_text(event)
            if text is None or "/" not in text:
                return f"event {event.get('EventNum')} on PCR {pcr} is not a ukey measurement"
            if text.startswith(EARLIER_SESSION):
                text = text[len(EARLIER_SESSION):]
            name, component = text.split("/", 1)
            entity = self.entities.get(name)
            if entity is None:
                return f"entity {name} (component {component}) is not in the policy"
            expected = (entity.get("components") or {}).get(component)
            if expected is None:
                return f"entity {name}: component {component} is not in the policy"
            if pcr != entity.get("register"):
                return f"entity {name} component {component} was measured into PCR {pcr}, not its register {entity.get('register')}"
            parent = entity.get("parent")
            if name not in measured and parent != ROOT and not self._trusted(parent, measured):
                return f"entity {name} component {component} was measured before its parent {parent} was trusted"
            digest = _sha256(event)
            if not expected.get("writable") and digest != str(expected.get("sha256", "")).lower():
                return f"entity {name} component {component}: measured sha256:{digest}, the policy expects sha256:{expected.get('sha256')}"
            measured.setdefault(name, {})[component] = digest or ""
        return ""

    def _trusted(self, name: str, measured: typing.Dict[str, typing.Dict[str, str]]) -> bool:
        entity = self.entities.get(name)
        if entity is None or name not in measured:
            return False
        if entity.get("parent") != ROOT and not self._trusted(entity.get("parent"), measured):
            return False
        return all(component in measured[name] for component in entity.get("components") or {})


class UkeyPolicy(policies.Policy):
    def get_relevant_pcrs(self) -> typing.FrozenSet[int]:
        return REPLAYED_PCRS

    def refstate_to_test(self, refstate: policies.RefState) -> tests.Test:
        if not isinstance(refstate, dict) or refstate.get("ukey_refstate") != 1:
            raise Exception("not a ukey refstate: write one with 'ukeyctl policy export --keylime'")
        entities = refstate.get("entities")
        if not isinstance(entities, dict) or not entities:
            raise Exception("the ukey refstate names no entities")
        return UkeyChain(entities)


policies.register("ukey", UkeyPolicy())
