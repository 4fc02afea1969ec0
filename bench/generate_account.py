"""Write a synthetic account: a small catalog plus N customers, each with one contract.

Each contract has a prepaid commit, a multiplier override and a quarterly scheduled charge, like
the WidgetsExpress example. Customers and their contracts are split over files of
--per-file customers each (customers/0000.yaml, ...), so loading exercises many files.

    python bench/generate_account.py --customers 10000 --out /tmp/account
"""

from __future__ import annotations

import argparse
from pathlib import Path

HEADER = "apiVersion: billing-reconciler/v1\n"

CATALOG = HEADER + """\
kind: BillableMetric
metadata: {name: api-calls}
spec:
  name: API calls
  event_type_filter: {in_values: [api_call]}
  aggregation_type: COUNT
  group_keys: [[region]]
---
""" + HEADER + """\
kind: BillableMetric
metadata: {name: compute-hours}
spec:
  name: Compute hours
  event_type_filter: {in_values: [compute]}
  aggregation_type: SUM
  aggregation_key: hours
  group_keys: [[region]]
---
""" + HEADER + """\
kind: Product
metadata: {name: api-calls}
spec: {name: API calls, type: USAGE, billable_metric: api-calls, tags: [cloud], pricing_group_key: [region]}
---
""" + HEADER + """\
kind: Product
metadata: {name: compute-hours}
spec: {name: Compute hours, type: USAGE, billable_metric: compute-hours, tags: [cloud]}
---
""" + HEADER + """\
kind: Product
metadata: {name: prepaid-commit}
spec: {name: Prepaid commit, type: FIXED}
---
""" + HEADER + """\
kind: Product
metadata: {name: platform-fee}
spec: {name: Platform charge, type: FIXED}
---
""" + HEADER + """\
kind: RateCard
metadata: {name: cloud-2024}
spec:
  name: Cloud 2024
  aliases: [{name: cloud-standard}]
  rates:
    - {product: api-calls, starting_at: 2024-01-01T00:00:00Z, entitled: true, rate_type: FLAT, price: 0.5}
    - product: compute-hours
      starting_at: 2024-01-01T00:00:00Z
      entitled: true
      rate_type: TIERED
      tiers: [{size: 1000, price: 10}, {price: 8}]
"""

# One customer and its contract; {n} is the customer number.
CUSTOMER = HEADER + """\
kind: Customer
metadata:
  name: customer-{n:05d}
spec:
  name: Customer {n}
  ingest_aliases: [customer-{n:05d}-prod]
  custom_fields: {{sfdc_account_id: sfdc{n:05d}}}
  customer_billing_provider_configurations:
    - key: aws
      billing_provider: aws_marketplace
      delivery_method: direct_to_billing_provider
      configuration: {{aws_customer_id: c{n:05d}, aws_product_code: widgets, aws_region: us-east-1}}
---
""" + HEADER + """\
kind: Contract
metadata:
  name: customer-{n:05d}-2024
  labels: {{team: enterprise}}
spec:
  customer: customer-{n:05d}
  rate_card: cloud-2024
  starting_at: 2024-11-01T00:00:00Z
  usage_statement_schedule: {{frequency: MONTHLY, day: CONTRACT_START}}
  scheduled_charges_on_usage_invoices: ALL
  billing_provider_configuration: {{billing_provider_configuration: aws}}
  commits:
    - key: prepaid-2024
      type: PREPAID
      product: prepaid-commit
      applicable_product_tags: [cloud]
      access_schedule:
        schedule_items:
          - {{amount: {amount}, starting_at: 2024-11-01T00:00:00Z, ending_before: 2025-11-01T00:00:00Z}}
      invoice_schedule:
        schedule_items:
          - {{amount: {amount}, timestamp: 2024-11-01T00:00:00Z}}
  overrides:
    - key: cloud-discount
      starting_at: 2024-11-01T00:00:00Z
      applicable_product_tags: [cloud]
      type: MULTIPLIER
      multiplier: 0.95
  scheduled_charges:
    - key: platform-fee
      product: platform-fee
      name: Platform Charge
      schedule:
        recurring_schedule:
          starting_at: 2024-11-01T00:00:00Z
          ending_before: 2025-11-01T00:00:00Z
          frequency: QUARTERLY
          unit_price: 100000
          quantity: 1
          amount_distribution: EACH
  usage_filter:
    group_key: region
    group_values: [US]
"""


def generate(customers: int, out: Path, per_file: int = 100) -> list[Path]:
    """Write the account under `out`; returns the files written."""
    (out / "catalog").mkdir(parents=True, exist_ok=True)
    (out / "customers").mkdir(parents=True, exist_ok=True)
    catalog = out / "catalog" / "catalog.yaml"
    catalog.write_text(CATALOG)
    written = [catalog]
    for first in range(0, customers, per_file):
        docs = [CUSTOMER.format(n=n, amount=100000 + n * 100) for n in range(first, min(first + per_file, customers))]
        path = out / "customers" / f"{first // per_file:04d}.yaml"
        path.write_text("---\n".join(docs))
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=1000, help="number of customers (each with a contract)")
    parser.add_argument("--out", type=Path, required=True, help="directory to write the manifests into")
    parser.add_argument("--per-file", type=int, default=100, help="customers per file")
    args = parser.parse_args(argv)
    files = generate(args.customers, args.out, args.per_file)
    lines = sum(p.read_text().count("\n") for p in files)
    print(f"Wrote {args.customers} customers + {args.customers} contracts in {len(files)} files "
          f"({lines} lines) to {args.out}")


if __name__ == "__main__":
    main()
