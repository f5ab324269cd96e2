"""The compliance outputs as people read them: the Art. 15 access report in plain words
and the Art. 30 record, as text (a terminal, an e-mail) or as a standalone printable
HTML page. Rendered from the JSON the session returns, nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import jinja2

from pacte.audit.reports import plain_words
from pacte.audit.trail import AuditEntry

__all__ = ["FORMATS", "access_report_html", "access_report_text", "record_html",
           "record_text"]

FORMATS = ("json", "text", "html")

_DOCUMENTS = jinja2.Environment(
    loader=jinja2.PackageLoader("pacte.console", "templates"), autoescape=True,
    trim_blocks=True, lstrip_blocks=True)
_BASES = {
    "consent": "your consent, which you may withdraw at any time",
    "contract": "the contract with you (to serve you as a customer)",
    "legal_obligation": "a legal obligation of the controller",
    "legitimate_interest": "the controller's legitimate interest, which you may object to",
    "request": "your own request",
}
_OBJECT = ("You may object to any use based on a legitimate interest, withdraw any "
           "consent (it holds at once), ask for your data to be corrected or erased, and "
           "complain to your data protection authority. Ask the service you are a "
           "customer of, or its data protection officer.")


def _controller_name(controller: Mapping[str, Any] | None) -> str:
    if not controller:
        return ""
    name = str(controller.get("name") or "")
    dpo = controller.get("dpo")
    return f"{name} (data protection officer: {dpo})" if dpo else name


def _access_doc(report: Mapping[str, Any], controller: Mapping[str, Any] | None
                ) -> dict[str, Any]:
    checkpoint = report.get("checkpoint") or {}
    return {
        "generated": str(report.get("generated_at", ""))[:10],
        "controller": _controller_name(controller),
        "proof": f"checkpoint {checkpoint.get('size')} signed {checkpoint.get('time')}"
                 if checkpoint else "no signed checkpoint yet",
        "purposes": [_purpose_doc(p) for p in report.get("purposes") or []],
        "recipients": ", ".join(report.get("recipients") or []) or "No one.",
        "uses": plain_words([_use_entry(u) for u in report.get("uses") or []]),
        "object": _OBJECT,
        "subject": report.get("subject"),
    }


def _purpose_doc(p: Mapping[str, Any]) -> dict[str, Any]:
    """One purpose of the report, in words."""
    days = p.get("retention_days")
    return {
        "why": str(p.get("description") or p.get("id")).rstrip("."),
        "basis": _BASES.get(str(p.get("legal_basis")), str(p.get("legal_basis"))),
        "data": ", ".join(c.split(".")[-1].replace("_", " ")
                          for c in p.get("categories") or []) or "none",
        "kept": f"records up to {days} days old" if days else "as long as you are a customer",
        "uses": p.get("uses"),
    }


def _use_entry(u: Mapping[str, Any]) -> AuditEntry:
    """One use of the report as the audit entry it was, for `plain_words`."""
    # Each use carries its entry as recorded (canonical JSON): the words come from it.
    try:
        record = json.loads(u["entry"])
    except (KeyError, TypeError, ValueError):
        record = {"action": u.get("action"), "outcome": u.get("outcome"),
                  "role": u.get("role"), "principal_name": u.get("by"),
                  "purpose": u.get("purpose"), "fields": u.get("fields") or []}
    return AuditEntry(seq=int(u.get("seq", 0)), time=str(u.get("time", "")), record=record,
                      entry_hash=b"", prev_hash=b"", canonical=b"")


def _times(n: object) -> str:
    return "once" if n == 1 else f"{n} times"


def access_report_text(report: Mapping[str, Any], *,
                       controller: Mapping[str, Any] | None = None) -> str:
    doc = _access_doc(report, controller)
    out = ["Your personal data: what was done with it",
           f"(Art. 15 GDPR; made {doc['generated']}"
           + (f" by {doc['controller']}" if doc["controller"] else "") + ")", "",
           "Why your data was used:"]
    out += [f"- {p['why']}: on the basis of {p['basis']}; data: {p['data']}; "
            f"{p['kept']}; used {_times(p['uses'])}" for p in doc["purposes"]] or ["- not yet"]
    out += ["", f"Who received it: {doc['recipients']}", "", "Each use:"]
    out += [f"- {u}" for u in doc["uses"]] or ["- none"]
    out += ["", "How to object: " + doc["object"], "",
            f"Proof: {doc['proof']}; reference {doc['subject']}."]
    return "\n".join(out) + "\n"


def access_report_html(report: Mapping[str, Any], *,
                       controller: Mapping[str, Any] | None = None) -> str:
    return _DOCUMENTS.get_template("document_report.html").render(
        doc=_access_doc(report, controller))


def _record_doc(record: Mapping[str, Any]) -> dict[str, Any]:
    controller = record.get("controller") or {}
    lines = [f"Controller: {controller.get('name') or 'not set (policy.toml [controller])'}"]
    for key, label in (("address", "Address"), ("contact", "Contact"),
                       ("dpo", "Data protection officer"), ("representative",
                                                            "Representative")):
        if controller.get(key):
            lines.append(f"{label}: {controller[key]}")
    return {"controller": lines, "generated": record.get("generated_at"),
            "version": record.get("policy_version"),
            "activities": list(record.get("activities") or [])}


def record_text(record: Mapping[str, Any]) -> str:
    doc = _record_doc(record)
    out = ["Record of processing activities (Art. 30 GDPR)", *doc["controller"],
           f"Generated {doc['generated']} from policy version {doc['version']}", ""]
    for a in doc["activities"]:
        out += [f"{a['purpose']}: {a.get('description') or ''}",
                f"  legal basis: {a['legal_basis']}; data subjects: {a['data_subjects']}",
                "  data categories: " + (", ".join(a["data_categories"]) or "none"),
                "  recipients: " + ("; ".join(a.get("recipients") or []) or "none"),
                "  transfers: " + ("; ".join(a.get("transfers") or []) or "none"),
                f"  retention: {a.get('retention')}",
                "  safeguards: " + "; ".join(a.get("safeguards") or []), ""]
    return "\n".join(out)


def record_html(record: Mapping[str, Any]) -> str:
    return _DOCUMENTS.get_template("document_record.html").render(doc=_record_doc(record))
