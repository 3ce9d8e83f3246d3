"""An email's attachments as sections of the email's document.

unstructured's ``partition_email`` runs with ``process_attachments=False``: it would drop what it
cannot partition without a word and knows nothing of Holdfast's checks. Here each attachment (a
part with a file name or ``Content-Disposition: attachment``, and each attached message) goes
through the same checks and parser as an uploaded file; its sections are filed under its name.
A bad attachment is skipped and logged, never the whole email. The parser is passed in:
``ingestion.parsing`` calls this module, so importing it back would make a cycle.
"""

from __future__ import annotations

import email
import logging
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from ingestion.markdown_sections import ParsedDocument, Section
from ingestion.validation import SUPPORTED_SUFFIXES, Limits, validate_file
from services.errors import HoldfastError, InvalidRequestError

log = logging.getLogger("holdfast.ingest")

MAX_ATTACHMENTS = 20  # per uploaded email, attached messages' own attachments included
MAX_DEPTH = 2  # the email's attachments are depth 1, an attached message's attachments depth 2
_PLAIN_SUFFIX = re.compile(r"\.[a-z0-9]{1,8}")
_CID = re.compile(r"""cid:([^"'\s>)]+)""", re.IGNORECASE)
# A part with no file name is named by its type, for the supported types (others are skipped).
_SUFFIX_OF_TYPE = {
    "text/plain": ".txt",
    "text/markdown": ".md",
    "text/csv": ".csv",
    "text/html": ".html",
    "application/pdf": ".pdf",
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/tiff": ".tif",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "message/rfc822": ".eml",  # one the email package could not open as a message
}


@dataclass(frozen=True, slots=True)
class AttachedFile:
    name: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class AttachedMessage:
    """A message attached as ``message/rfc822`` (a mail forwarded as an attachment)."""

    name: str
    message: EmailMessage

    @property
    def content_type(self) -> str:
        return "message/rfc822"


Attachment = AttachedFile | AttachedMessage


class ParsedFile(Protocol):
    @property
    def document(self) -> ParsedDocument: ...
    @property
    def ocr_pages(self) -> int: ...


class ParseFile(Protocol):
    """``ingestion.parsing``'s entry point for one file; for an email, its body only."""

    def __call__(self, path: Path, doc_type: str, *, name: str, limits: Limits) -> ParsedFile: ...


@dataclass(slots=True)
class AttachmentSections:
    sections: list[Section] = field(default_factory=list)
    ocr_pages: int = 0


def read_message(path: Path) -> EmailMessage:
    with path.open("rb") as fh:
        message = email.message_from_binary_file(fh, policy=policy.default)
    assert isinstance(message, EmailMessage)  # policy.default builds EmailMessage objects
    return message


def _shown_in_body(part: EmailMessage, shown: frozenset[str]) -> bool:
    """A picture the HTML body shows (``cid:``, a signature logo), or one marked inline:
    part of the body as the reader sees it, not an attachment."""
    cid = str(part["Content-ID"] or "").strip().strip("<>")
    if part.get_content_maintype() != "image" or not cid:
        return False
    return cid in shown or part.get_content_disposition() == "inline"


def _is_attachment(part: EmailMessage, shown: frozenset[str]) -> bool:
    if _shown_in_body(part, shown):
        return False
    return part.get_content_disposition() == "attachment" or part.get_filename() is not None


def _cids_shown(body: EmailMessage | None) -> frozenset[str]:
    if body is None or body.get_content_subtype() != "html":
        return frozenset()
    return frozenset(_CID.findall(str(body.get_content())))


def _attachment_parts(
    part: EmailMessage, body: EmailMessage | None, shown: frozenset[str]
) -> Iterator[EmailMessage]:
    """Attachment parts in document order, found in nested multiparts too; an attached message
    is one attachment (its own parts are its business)."""
    if part.get_content_type() == "message/rfc822":
        yield part
        return
    if part.is_multipart():
        for child in part.iter_parts():
            assert isinstance(child, EmailMessage)
            yield from _attachment_parts(child, body, shown)
        return
    if part is not body and _is_attachment(part, shown):
        yield part


def _name_of(part: EmailMessage, message: EmailMessage | None) -> str:
    """The part's file name; else an attached message's subject; else a name from its type."""
    name = (part.get_filename() or "").strip()
    if name:
        return name
    if message is not None:
        return str(message.get("subject") or "").strip() or "attached message"
    return "attachment" + _SUFFIX_OF_TYPE.get(part.get_content_type(), "")


def _attachment(part: EmailMessage) -> Attachment:
    if part.get_content_type() == "message/rfc822":
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        if isinstance(inner, EmailMessage):
            return AttachedMessage(_name_of(part, inner), inner)
    data = part.get_payload(decode=True)  # transfer encoding undone, bytes as sent
    return AttachedFile(
        _name_of(part, None), part.get_content_type(), data if isinstance(data, bytes) else b""
    )


def attachments_of(message: EmailMessage) -> list[Attachment]:
    """The message's attachments, files and attached messages, in the order they appear."""
    body = message.get_body(preferencelist=("html", "plain"))  # what partition_email reads
    body_part = body if isinstance(body, EmailMessage) else None
    shown = _cids_shown(body_part)
    tops = list(message.iter_parts()) if message.is_multipart() else [message]
    found: list[Attachment] = []
    for top in tops:
        assert isinstance(top, EmailMessage)
        found.extend(_attachment(part) for part in _attachment_parts(top, body_part, shown))
    return found


def _suffix(name: str) -> str:
    """The name's suffix when it is a plain one: the only part of a file name that is logged
    (names can hold PII)."""
    suffix = Path(name).suffix.lower()
    return suffix if _PLAIN_SUFFIX.fullmatch(suffix) else "(none)"


@dataclass(slots=True)
class _Walk:
    parse: ParseFile
    limits: Limits
    folder: Path
    result: AttachmentSections = field(default_factory=AttachmentSections)
    seen: int = 0
    over_cap: int = 0

    def message(self, message: EmailMessage, prefix: tuple[str, ...], depth: int) -> None:
        """The attachments of ``message``, which sit at ``depth`` (1: the uploaded email's)."""
        try:
            attachments = attachments_of(message)
        except Exception as exc:  # a MIME tree too broken to walk: its body is indexed already
            _skipped("message/rfc822", ".eml", f"attachments unreadable ({type(exc).__name__})")
            return
        if attachments and depth > MAX_DEPTH:
            reason = f"{len(attachments)} attachment(s) nested deeper than {MAX_DEPTH}"
            _skipped("message/rfc822", ".eml", reason)
            return
        for attachment in attachments:
            if self.seen >= MAX_ATTACHMENTS:
                self.over_cap += 1
                continue
            self.seen += 1
            self.attachment(attachment, prefix, depth)

    def attachment(self, attachment: Attachment, prefix: tuple[str, ...], depth: int) -> None:
        kind = attachment.content_type
        suffix = ".eml" if isinstance(attachment, AttachedMessage) else _suffix(attachment.name)
        if suffix not in SUPPORTED_SUFFIXES:
            _skipped(kind, suffix, "unsupported file type")
            return
        path = self.folder / f"attachment-{self.seen}{suffix}"
        try:
            path.write_bytes(_bytes_of(attachment, self.limits))
            doc_type = validate_file(path, path.name, self.limits)
            parsed = self.parse(path, doc_type, name=attachment.name, limits=self.limits)
            nested = read_message(path) if doc_type == "email" else None
        except HoldfastError as exc:
            if not isinstance(exc, InvalidRequestError):
                raise  # a backend down (OCR) is not this attachment's fault: fail as a file would
            _skipped(kind, suffix, str(exc))
            return
        except Exception as exc:  # parsers and the email package raise anything on broken input
            _skipped(kind, suffix, f"unreadable ({type(exc).__name__})")
            return
        finally:
            path.unlink(missing_ok=True)
        path_prefix = (*prefix, attachment.name)
        for section in parsed.document.sections:
            self.result.sections.append(Section((*path_prefix, *section.path), section.blocks))
        self.result.ocr_pages += parsed.ocr_pages
        if nested is not None:
            self.message(nested, path_prefix, depth + 1)


def _bytes_of(attachment: Attachment, limits: Limits) -> bytes:
    data = (
        attachment.message.as_bytes()
        if isinstance(attachment, AttachedMessage)
        else attachment.data
    )
    if len(data) > limits.max_file_bytes:  # validate_file says the same; this skips the write
        raise InvalidRequestError(f"file is {len(data)} bytes, over the limit")
    return data


def _skipped(kind: str, suffix: str, reason: str) -> None:
    log.info("email attachment skipped: type=%s suffix=%s reason=%s", kind, suffix, reason)


def parse_attachments(path: Path, *, parse: ParseFile, limits: Limits) -> AttachmentSections:
    """Sections of the email's attachments, each section path starting with the attachment's
    name. ``parse`` parses one file (an email: its body), as an uploaded file is parsed."""
    with tempfile.TemporaryDirectory(prefix="holdfast-attachment-") as folder:
        walk = _Walk(parse, limits, Path(folder))
        walk.message(read_message(path), (), 1)
    if walk.over_cap:
        log.info(
            "email attachments skipped: %d over the limit of %d per email",
            walk.over_cap,
            MAX_ATTACHMENTS,
        )
    return walk.result
