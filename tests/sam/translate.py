#!/usr/bin/env python3
"""Prints the CloudFormation JSON that the SAM transform makes of a template.

    .local/venv/bin/python tests/sam/translate.py [infra/template.yaml] [Name=Value ...]

Offline: samtranslator (aws-sam-translator from PyPI, installed by
tests/stack/install.sh) runs here instead of in CloudFormation, and the
managed-policy names it may look up come from the copy it ships instead of
IAM. Name=Value pairs are parameter values (the template's defaults stand
for the others; a list parameter's value is comma-separated). Exit 1 with
SAM's own messages when the template is invalid.
"""

import json
import os
import sys
from pathlib import Path

# The ARNs samtranslator builds need a partition, which it takes from the region.
os.environ.setdefault("AWS_DEFAULT_REGION", os.environ.get("AWS_REGION", "us-east-1"))

from samtranslator.model.exceptions import InvalidDocumentException  # noqa: E402
from samtranslator.translator.managed_policy_translator import ManagedPolicyLoader  # noqa: E402
from samtranslator.translator.transform import transform  # noqa: E402
from samtranslator.yaml_helper import yaml_parse  # noqa: E402


class OfflinePolicyLoader(ManagedPolicyLoader):
    """The AWS managed policies by name, without calling IAM."""

    def __init__(self) -> None:
        super().__init__(iam_client=None)

    def load(self) -> dict:
        try:
            from samtranslator.internal.managed_policies import get_bundled_managed_policy_map
        except ImportError:  # an older samtranslator: no bundled copy
            return {}
        return get_bundled_managed_policy_map("aws") or {}


# What `sam validate` does too: the transform wants packaged code (s3://),
# as `sam deploy` uploads it; a local path stands for it here.
LOCAL_URIS = {
    "AWS::Serverless::Function": "CodeUri",
    "AWS::Serverless::LayerVersion": "ContentUri",
    "AWS::Serverless::HttpApi": "DefinitionUri",
    "AWS::Serverless::Api": "DefinitionUri",
}


def as_packaged(template: dict) -> None:
    def fix(props: dict, key: str) -> None:
        uri = props.get(key)
        if isinstance(uri, str) and not uri.startswith("s3://"):
            props[key] = "s3://packaged/" + (uri.strip("./") or "code")

    globals_ = template.get("Globals") or {}
    fix(globals_.get("Function") or {}, "CodeUri")
    fix(globals_.get("HttpApi") or {}, "DefinitionUri")
    for res in (template.get("Resources") or {}).values():
        key = LOCAL_URIS.get(res.get("Type"))
        if key:
            fix(res.setdefault("Properties", {}), key)


def parameter_values(template: dict, given: dict) -> dict:
    """Every parameter's value as CloudFormation hands it to the transform:
    the given one or the default, a list for the list types."""
    values = {}
    for name, spec in (template.get("Parameters") or {}).items():
        value = given.pop(name, spec.get("Default"))
        if value is None:
            continue
        kind = str(spec.get("Type", "String"))
        if kind == "CommaDelimitedList" or kind.startswith("List<"):
            value = [v.strip() for v in str(value).split(",")]
        values[name] = value
    if given:
        raise SystemExit(f"unknown parameters: {', '.join(sorted(given))}")
    return values


def main(argv: list) -> int:
    root = Path(__file__).resolve().parents[2]
    args = argv[1:]
    path = Path(args.pop(0)) if args and "=" not in args[0] else root / "infra" / "template.yaml"
    template = yaml_parse(path.read_text(encoding="utf-8"))
    params = parameter_values(template, dict(a.split("=", 1) for a in args))
    as_packaged(template)
    try:
        out = transform(template, params, OfflinePolicyLoader())
    except InvalidDocumentException as e:
        for cause in e.causes:
            print(f"{path}: {cause.message}", file=sys.stderr)
        return 1
    json.dump(out, sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
