#!/usr/bin/python
"""Test-only module: report the given dict as the host's facts."""

from __future__ import annotations

DOCUMENTATION = r"""
module: hpcgw_fixed_facts
short_description: Set fixed facts (unit tests of the hpc-gateway bundle only)
description: Returns O(facts) as ansible_facts, so templates see the same facts on every machine.
options:
  facts:
    description: The facts, as setup would report them without the ansible_ prefix.
    type: dict
    required: true
"""

from ansible.module_utils.basic import AnsibleModule


def main() -> None:
    module = AnsibleModule(argument_spec={"facts": {"type": "dict", "required": True}}, supports_check_mode=True)
    module.exit_json(changed=False, ansible_facts=module.params["facts"])


if __name__ == "__main__":
    main()
