"""show_body writes indented JSON by hand (for speed): it must equal json.dumps(indent=2) of the
redacted body, for any body."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from billing_reconciler import canonical
from billing_reconciler.plan.render.common import KNOWN_AFTER_APPLY, redact, show_body

_names = st.sampled_from(["key", "api_key", "client_secret", "name", "amount", "é\"x", "token", "group_key"])
_leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8),
                    st.decimals(allow_nan=False, allow_infinity=False, places=4).map(Decimal.normalize),
                    st.just("${Contract/acme.id}"))
_bodies = st.recursive(_leaves, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                        st.dictionaries(_names, inner, max_size=4)), max_leaves=25)


@given(_bodies)
def test_same_text_as_json_dumps_of_the_redacted_body(body):
    expected = canonical.dumps(redact(body), indent=2, sort_keys=False)
    expected = expected.replace('"${Contract/acme.id}"', f'"{KNOWN_AFTER_APPLY}"')
    assert show_body(body) == expected


def test_secrets_hidden_at_any_depth_and_placeholders_shown():
    body = {"configuration": {"api_key": "sk_live_1", "nested": [{"client_secret": "s"}]}, "id": "${Customer/a.id}"}
    text = show_body(body)
    assert "sk_live_1" not in text and '"s"' not in text and text.count("(sensitive)") == 2
    assert f'"id": "{KNOWN_AFTER_APPLY}"' in text
