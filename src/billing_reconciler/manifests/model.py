"""The five manifest kinds as pydantic models.

Field names, nesting and enum values are the billing API's own (metronome-sdk request types), with
two systematic changes: an id field that points at another managed object (`product_id`,
`customer_id`, `rate_card_id`, `billable_metric_id`) is named without `_id` and holds that object's
key, and every list item that can change later carries a `key`.

These models check shape, types, enums and single-field rules. Rules that span fields or objects
(time ranges, overlaps, references, duplicate keys) live in `rules.py` and `references.py`, where
each error can name its exact field path.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema

from ..bounds import MAX_PLACES

from .types import (
    BillingFrequency,
    BillingProvider,
    Cents,
    CommitRateType,
    DeliveryMethod,
    Fraction,
    IgnorePath,
    Key,
    NonNegative,
    Number,
    Price,
    Quantity,
    RateType,
    Ref,
    RoundingMethod,
    ScheduleFrequency,
    SensitivePath,
    Timestamp,
    UpperEnum,
)

API_VERSION = "billing-reconciler/v1"

# A credit type (pricing unit) by its name as the billing API lists it, e.g. "USD (cents)" or
# "seat credits". Credit types are made in Metronome's UI, not through the API: a manifest names
# one like a Terraform data source, and plan checks the backend has it (plan/credit_types.py).
CreditTypeName = Annotated[str, Field(min_length=1, max_length=200)]


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid")


# Text that may instead come from the environment: `{from_env: NAME}` (manifests.from_env). The
# models see a stand-in text in its place (from_env.stand_ins), so a mistake is reported once, not
# once per branch of a union; the JSON Schema shows both forms.
EnvText = Annotated[str, WithJsonSchema({"anyOf": [{"type": "string"}, {
    "type": "object", "additionalProperties": False, "required": ["from_env"],
    "properties": {"from_env": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$", "description":
                                "Name of the environment variable holding the value (read by plan and apply, not "
                                "by validate); the value counts as sensitive."}}}]})]


# --- shared building blocks -------------------------------------------------------------------


class Rounding(Spec):
    decimal_places: int = Field(ge=0, le=MAX_PLACES)
    rounding_method: RoundingMethod


class Specifier(Spec):
    """Usage matches when all given conditions hold (tags: all of them)."""

    product: Ref | None = None
    product_tags: list[str] | None = None
    pricing_group_values: dict[str, str] | None = None
    presentation_group_values: dict[str, str] | None = None


class AccessScheduleItem(Spec):
    amount: Cents
    starting_at: Timestamp
    ending_before: Timestamp


class AccessSchedule(Spec):
    schedule_items: list[AccessScheduleItem] = Field(min_length=1)
    access_type: UpperEnum("SPEND", "QUANTITY") | None = None
    credit_type: CreditTypeName | None = None


class InvoiceScheduleItem(Spec):
    """One invoice: either `amount`, or `unit_price` × `quantity`."""

    timestamp: Timestamp
    amount: Cents | None = None
    unit_price: Cents | None = None
    quantity: Quantity | None = None


class RecurringSchedule(Spec):
    starting_at: Timestamp
    ending_before: Timestamp
    frequency: ScheduleFrequency
    amount_distribution: UpperEnum("DIVIDED", "DIVIDED_ROUNDED", "EACH")
    amount: Cents | None = None
    unit_price: Cents | None = None
    quantity: Quantity | None = None


class InvoiceSchedule(Spec):
    schedule_items: list[InvoiceScheduleItem] | None = None
    recurring_schedule: RecurringSchedule | None = None
    credit_type: CreditTypeName | None = None
    do_not_invoice: bool | None = None


class HierarchyChildAccess(Spec):
    type: UpperEnum("ALL", "NONE", "CONTRACT_IDS")
    contract_ids: list[str] | None = None


class CommitHierarchyConfiguration(Spec):
    child_access: HierarchyChildAccess


# --- BillableMetric ---------------------------------------------------------------------------


class ValueFilter(Spec):
    in_values: list[str] | None = Field(default=None, min_length=1)
    not_in_values: list[str] | None = Field(default=None, min_length=1)


class PropertyFilter(Spec):
    name: str
    exists: bool | None = None
    in_values: list[str] | None = Field(default=None, min_length=1)
    not_in_values: list[str] | None = Field(default=None, min_length=1)


class BillableMetricSpec(Spec):
    name: str
    aggregation_type: UpperEnum("COUNT", "SUM", "MAX", "UNIQUE", "LATEST") | None = None
    aggregation_key: str | None = None
    event_type_filter: ValueFilter | None = None
    property_filters: list[PropertyFilter] | None = None
    group_keys: list[list[str]] | None = None
    sql: str | None = None
    custom_fields: dict[str, EnvText] | None = None


# --- Product ----------------------------------------------------------------------------------


class QuantityConversion(Spec):
    conversion_factor: Quantity
    operation: UpperEnum("MULTIPLY", "DIVIDE")
    name: str | None = None


class QuantityRounding(Spec):
    decimal_places: int = Field(ge=0, le=MAX_PLACES)
    rounding_method: UpperEnum("ROUND_UP", "ROUND_DOWN", "ROUND_HALF_UP")


class ProductSpec(Spec):
    name: str
    type: UpperEnum("USAGE", "SUBSCRIPTION", "COMPOSITE", "FIXED", "PRO_SERVICE", "PROFESSIONAL_SERVICE")
    billable_metric: Ref | None = None
    composite_products: list[Ref] | None = None
    composite_tags: list[str] | None = None
    exclude_free_usage: bool | None = None
    include_composite_spend: bool | None = None
    pricing_group_key: list[str] | None = None
    presentation_group_key: list[str] | None = None
    quantity_conversion: QuantityConversion | None = None
    quantity_rounding: QuantityRounding | None = None
    sql_breakdown_granularity: UpperEnum("HOUR", "SERVICE_PERIOD") | None = None
    tags: list[str] | None = None
    is_refundable: bool | None = None
    netsuite_internal_item_id: str | None = None
    netsuite_overage_item_id: str | None = None
    custom_fields: dict[str, EnvText] | None = None


# --- RateCard ---------------------------------------------------------------------------------


class RateCardAlias(Spec):
    name: str
    starting_at: Timestamp | None = None
    ending_before: Timestamp | None = None


class CreditTypeConversion(Spec):
    custom_credit_type: CreditTypeName
    fiat_per_custom_credit: Price


class Tier(Spec):
    """`size` units at `price`; the last tier has no size and is open-ended."""

    price: Price
    size: Quantity | None = None


class CommitRate(Spec):
    rate_type: RateType
    price: Price | None = None
    tiers: list[Tier] | None = None


class Rate(Spec):
    """Identity: (product, pricing_group_values, billing_frequency, starting_at). Append-only."""

    product: Ref
    starting_at: Timestamp
    ending_before: Timestamp | None = None
    entitled: bool
    rate_type: RateType
    price: Price | None = None
    tiers: list[Tier] | None = Field(default=None, min_length=1)
    quantity: NonNegative | None = None
    is_prorated: bool | None = None
    billing_frequency: BillingFrequency | None = None
    pricing_group_values: dict[str, str] | None = None
    credit_type: CreditTypeName | None = None
    commit_rate: CommitRate | None = None
    custom_rate: dict[str, Any] | None = None


class RateCardSpec(Spec):
    name: str
    description: str | None = None
    aliases: list[RateCardAlias] | None = None
    fiat_credit_type: CreditTypeName | None = None
    credit_type_conversions: list[CreditTypeConversion] | None = None
    custom_fields: dict[str, EnvText] | None = None
    rates: list[Rate] | None = None


# --- Customer ---------------------------------------------------------------------------------


class CustomerBillingProviderConfiguration(Spec):
    key: Key
    billing_provider: BillingProvider
    configuration: dict[str, Any] | None = None
    delivery_method: DeliveryMethod | None = None
    delivery_method_id: str | None = None
    tax_provider: Literal["anrok", "avalara", "stripe"] | None = None


class CustomerRevenueSystemConfiguration(Spec):
    key: Key
    provider: Literal["netsuite"]
    configuration: dict[str, Any] | None = None
    delivery_method: Literal["direct_to_billing_provider"] | None = None
    delivery_method_id: str | None = None


class CustomerCredit(Spec):
    """A customer-level credit (`/v1/contracts/customerCredits/create`), shared by the customer's
    contracts (or those in applicable_contracts)."""

    key: Key
    product: Ref
    priority: Number
    access_schedule: AccessSchedule
    name: str | None = None
    description: str | None = None
    applicable_products: list[Ref] | None = None
    applicable_product_tags: list[str] | None = None
    specifiers: list[Specifier] | None = None
    applicable_contracts: list[Ref] | None = None
    rate_type: CommitRateType | None = None
    custom_fields: dict[str, str] | None = None
    netsuite_sales_order_id: str | None = None
    salesforce_opportunity_id: str | None = None


class CustomerCommit(CustomerCredit):
    """A customer-level commit (`/v1/contracts/customerCommits/create`); invoiced on invoice_contract."""

    type: UpperEnum("PREPAID", "POSTPAID")
    invoice_schedule: InvoiceSchedule | None = None
    invoice_contract: Ref | None = None


class CustomerSpec(Spec):
    name: str = Field(max_length=160)
    ingest_aliases: list[str] | None = None
    custom_fields: dict[str, EnvText] | None = None
    customer_billing_provider_configurations: list[CustomerBillingProviderConfiguration] | None = None
    customer_revenue_system_configurations: list[CustomerRevenueSystemConfiguration] | None = None
    commits: list[CustomerCommit] | None = None
    credits: list[CustomerCredit] | None = None


# --- Contract terms ---------------------------------------------------------------------------


class Commit(Spec):
    key: Key
    type: UpperEnum("PREPAID", "POSTPAID")
    product: Ref
    name: str | None = None
    description: str | None = None
    access_schedule: AccessSchedule
    invoice_schedule: InvoiceSchedule | None = None
    applicable_products: list[Ref] | None = None
    applicable_product_tags: list[str] | None = None
    specifiers: list[Specifier] | None = None
    priority: Number | None = None
    rate_type: CommitRateType | None = None
    rollover_fraction: Fraction | None = None
    temporary_id: str | None = None
    custom_fields: dict[str, EnvText] | None = None
    netsuite_sales_order_id: str | None = None
    hierarchy_configuration: CommitHierarchyConfiguration | None = None


class Credit(Spec):
    key: Key
    product: Ref
    name: str | None = None
    description: str | None = None
    access_schedule: AccessSchedule
    applicable_products: list[Ref] | None = None
    applicable_product_tags: list[str] | None = None
    specifiers: list[Specifier] | None = None
    priority: Number | None = None
    rate_type: CommitRateType | None = None
    rollover_fraction: Fraction | None = None
    custom_fields: dict[str, EnvText] | None = None
    netsuite_sales_order_id: str | None = None
    hierarchy_configuration: CommitHierarchyConfiguration | None = None


class OverrideSpecifier(Spec):
    product: Ref | None = None
    product_tags: list[str] | None = None
    pricing_group_values: dict[str, str] | None = None
    presentation_group_values: dict[str, str] | None = None
    billing_frequency: BillingFrequency | None = None
    # Commit-specific overrides name commits, recurring commits or any commit/credit by key.
    commits: list[Ref] | None = None
    recurring_commits: list[Ref] | None = None
    any_commits_or_credits: list[Ref] | None = None


class OverwriteRate(Spec):
    rate_type: RateType
    price: Price | None = None
    quantity: NonNegative | None = None
    tiers: list[Tier] | None = None
    is_prorated: bool | None = None
    credit_type: CreditTypeName | None = None
    custom_rate: dict[str, Any] | None = None


class MultiplierTier(Spec):
    multiplier: NonNegative
    size: Quantity | None = None


class Override(Spec):
    key: Key
    starting_at: Timestamp
    ending_before: Timestamp | None = None
    type: UpperEnum("OVERWRITE", "MULTIPLIER", "TIERED") | None = None
    product: Ref | None = None
    applicable_product_tags: list[str] | None = None
    override_specifiers: list[OverrideSpecifier] | None = None
    entitled: bool | None = None
    multiplier: NonNegative | None = None
    overwrite_rate: OverwriteRate | None = None
    tiers: list[MultiplierTier] | None = None
    priority: Number | None = None
    is_commit_specific: bool | None = None
    target: CommitRateType | None = None


class ScheduledCharge(Spec):
    key: Key
    product: Ref
    name: str | None = None
    schedule: InvoiceSchedule
    custom_fields: dict[str, EnvText] | None = None
    netsuite_sales_order_id: str | None = None


class Discount(ScheduledCharge):
    pass


class ProfessionalService(Spec):
    key: Key
    product: Ref
    unit_price: Cents
    quantity: Quantity
    max_amount: Cents
    description: str | None = None
    custom_fields: dict[str, EnvText] | None = None
    netsuite_sales_order_id: str | None = None


class Proration(Spec):
    is_prorated: bool
    invoice_behavior: UpperEnum("BILL_IMMEDIATELY", "BILL_ON_NEXT_COLLECTION_DATE") | None = None
    rounding: Rounding | None = None


class SubscriptionRate(Spec):
    product: Ref
    billing_frequency: BillingFrequency


class SeatConfig(Spec):
    initial_seat_ids: list[str]
    seat_group_key: str
    initial_unassigned_seats: NonNegative | None = None


class BillingCycleConfig(Spec):
    anchor_date: Timestamp | None = None
    invoice_placement: UpperEnum("ON_SCHEDULED_INVOICE", "ON_USAGE_INVOICE") | None = None


class QuantityUpdate(Spec):
    """A scheduled quantity change (sent as update_subscriptions[].quantity_updates)."""

    starting_at: Timestamp
    quantity: NonNegative | None = None
    quantity_delta: Number | None = None


class SeatIdsChange(Spec):
    seat_ids: list[str] = Field(min_length=1)
    starting_at: Timestamp


class UnassignedSeatsChange(Spec):
    quantity: Quantity
    starting_at: Timestamp


class SeatUpdates(Spec):
    add_seat_ids: list[SeatIdsChange] | None = None
    remove_seat_ids: list[SeatIdsChange] | None = None
    add_unassigned_seats: list[UnassignedSeatsChange] | None = None
    remove_unassigned_seats: list[UnassignedSeatsChange] | None = None


class Subscription(Spec):
    key: Key
    collection_schedule: UpperEnum("ADVANCE", "ARREARS")
    proration: Proration
    subscription_rate: SubscriptionRate
    initial_quantity: NonNegative | None = None
    quantity_management_mode: UpperEnum("QUANTITY_ONLY", "SEAT_BASED") | None = None
    seat_config: SeatConfig | None = None
    starting_at: Timestamp | None = None
    ending_before: Timestamp | None = None
    billing_cycle_config: BillingCycleConfig | None = None
    temporary_id: str | None = None
    name: str | None = None
    description: str | None = None
    custom_fields: dict[str, EnvText] | None = None
    quantity_updates: list[QuantityUpdate] | None = None
    seat_updates: SeatUpdates | None = None


class AccessAmount(Spec):
    unit_price: Cents
    quantity: Quantity | None = None
    credit_type: CreditTypeName | None = None
    access_type: UpperEnum("SPEND", "QUANTITY") | None = None


class InvoiceAmount(Spec):
    unit_price: Cents
    quantity: Quantity
    credit_type: CreditTypeName | None = None


class CommitDuration(Spec):
    value: Quantity
    unit: UpperEnum("PERIODS") | None = None


class ProrationRounding(Spec):
    access: Rounding | None = None
    invoice: Rounding | None = None


class SeatIncreaseConfig(Spec):
    is_prorated: bool


class SubscriptionConfig(Spec):
    subscription_id: str
    apply_seat_increase_config: SeatIncreaseConfig
    allocation: UpperEnum("POOLED", "INDIVIDUAL") | None = None


class RecurringCredit(Spec):
    key: Key
    product: Ref
    priority: Number
    starting_at: Timestamp
    ending_before: Timestamp | None = None
    access_amount: AccessAmount
    commit_duration: CommitDuration
    recurrence_frequency: UpperEnum("MONTHLY", "QUARTERLY", "ANNUAL", "WEEKLY", "DAILY") | None = None
    proration: UpperEnum("NONE", "FIRST", "LAST", "FIRST_AND_LAST") | None = None
    proration_rounding: ProrationRounding | None = None
    rollover_fraction: Fraction | None = None
    rate_type: CommitRateType | None = None
    applicable_products: list[Ref] | None = None
    applicable_product_tags: list[str] | None = None
    specifiers: list[Specifier] | None = None
    subscription_config: SubscriptionConfig | None = None
    temporary_id: str | None = None
    name: str | None = None
    description: str | None = None
    netsuite_sales_order_id: str | None = None


class RecurringCommit(RecurringCredit):
    invoice_amount: InvoiceAmount | None = None


class UsageFilter(Spec):
    group_key: str
    group_values: list[str] = Field(min_length=1)
    starting_at: Timestamp | None = None


class UsageStatementSchedule(Spec):
    frequency: BillingFrequency
    day: UpperEnum("FIRST_OF_MONTH", "CONTRACT_START", "CUSTOM_DATE") | None = None
    billing_anchor_date: Timestamp | None = None
    invoice_generation_starting_at: Timestamp | None = None


class ContractBillingProviderConfiguration(Spec):
    """Either the key of one of the customer's configurations, or provider + delivery method."""

    billing_provider_configuration: Ref | None = None
    billing_provider: BillingProvider | None = None
    delivery_method: DeliveryMethod | None = None


class StripeConfig(Spec):
    payment_type: UpperEnum("INVOICE", "PAYMENT_INTENT")
    invoice_metadata: dict[str, str] | None = None


class PrecalculatedTaxConfig(Spec):
    tax_amount: Cents
    tax_name: str | None = None


class PaymentGateConfig(Spec):
    payment_gate_type: UpperEnum("NONE", "STRIPE", "EXTERNAL")
    tax_type: UpperEnum("NONE", "STRIPE", "ANROK", "PRECALCULATED") | None = None
    stripe_config: StripeConfig | None = None
    precalculated_tax_config: PrecalculatedTaxConfig | None = None


class DiscountCap(Spec):
    amount: Cents
    spend_tracker_alias: str | None = None


class DiscountConfiguration(Spec):
    payment_fraction: Fraction
    cap: DiscountCap | None = None


class ThresholdCommit(Spec):
    product: Ref
    name: str | None = None
    description: str | None = None
    priority: Number | None = None


class CommitDurationSpec(Spec):
    unit: UpperEnum("DAYS", "WEEKS", "MONTHS", "YEARS")
    value: int = Field(gt=0)


class PrepaidThresholdCommit(ThresholdCommit):
    applicable_products: list[Ref] | None = None
    applicable_product_tags: list[str] | None = None
    specifiers: list[Specifier] | None = None
    rate_type: CommitRateType | None = None
    rollover_fraction: Fraction | None = None
    duration: CommitDurationSpec | None = None


class SpendThresholdConfiguration(Spec):
    threshold_amount: Cents
    is_enabled: bool
    commit: ThresholdCommit
    payment_gate_config: PaymentGateConfig
    discount_configuration: DiscountConfiguration | None = None


class PrepaidBalanceThresholdConfiguration(Spec):
    threshold_amount: Cents
    recharge_to_amount: Cents
    is_enabled: bool
    commit: PrepaidThresholdCommit
    payment_gate_config: PaymentGateConfig
    custom_credit_type: CreditTypeName | None = None
    discount_configuration: DiscountConfiguration | None = None
    threshold_balance_specifiers: list[dict[str, Any]] | None = None


class FutureInvoiceBehavior(Spec):
    trueup: UpperEnum("REMOVE", "AS_IS") | None = None


class ContractTransition(Spec):
    """The contract this one supersedes or renews: `transition.from_contract_id` in the API, the
    other contract's key here (`from`, a Python keyword, hence the alias). The old contract ends
    where this one starts."""

    model_config = ConfigDict(extra="forbid", serialize_by_alias=True, validate_by_name=False)

    from_: Ref = Field(alias="from", description="The key of the contract this one supersedes or renews")
    type: UpperEnum("SUPERSEDE", "RENEWAL")
    future_invoice_behavior: FutureInvoiceBehavior | None = None


class ContractSpec(Spec):
    customer: Ref
    name: str | None = None
    starting_at: Timestamp
    ending_before: Timestamp | None = None
    rate_card: Ref | None = None
    rate_card_alias: str | None = None
    commits: list[Commit] | None = None
    credits: list[Credit] | None = None
    overrides: list[Override] | None = None
    scheduled_charges: list[ScheduledCharge] | None = None
    discounts: list[Discount] | None = None
    subscriptions: list[Subscription] | None = None
    recurring_commits: list[RecurringCommit] | None = None
    recurring_credits: list[RecurringCredit] | None = None
    professional_services: list[ProfessionalService] | None = None
    usage_filter: UsageFilter | None = None
    usage_statement_schedule: UsageStatementSchedule | None = None
    billing_provider_configuration: ContractBillingProviderConfiguration | None = None
    spend_threshold_configuration: SpendThresholdConfiguration | None = None
    prepaid_balance_threshold_configuration: PrepaidBalanceThresholdConfiguration | None = None
    multiplier_override_prioritization: UpperEnum("LOWEST_MULTIPLIER", "EXPLICIT") | None = None
    scheduled_charges_on_usage_invoices: UpperEnum("ALL") | None = None
    net_payment_terms_days: NonNegative | None = None
    custom_fields: dict[str, EnvText] | None = None
    transition: ContractTransition | None = None

    # The keyed lists of a contract; each item's `key` is unique within its list.
    KEYED_LISTS: ClassVar[tuple[str, ...]] = (
        "commits", "credits", "overrides", "scheduled_charges", "discounts", "subscriptions",
        "recurring_commits", "recurring_credits", "professional_services",
    )


# --- the envelope -----------------------------------------------------------------------------


class Metadata(Spec):
    name: Key
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    # Spec fields whose values are secrets beyond those named like credentials (api_key, token,
    # password...): every output shows them as "(sensitive)" (redaction.py).
    sensitive: list[SensitivePath] | None = Field(
        None, description="Spec fields whose values are secrets, e.g. [spec.custom_fields.crm_account]: shown as "
                          "(sensitive) in every output. Fields named like credentials (api_key, token, password, "
                          "secret...) are hidden without being listed.")
    moved_from: list[Key] | None = Field(
        None, description="Former keys of this object (a rename): the plan moves the stored object to this key "
                          "with no API call, and the object keeps its id. A key the store does not know is ignored, "
                          "so old entries can stay.")
    ignore_changes: list[IgnorePath] | None = Field(
        None, description="Spec paths another system owns, e.g. [spec.custom_fields.sfdc_account_id, "
                          "spec.commits[prepaid-2024].access_schedule, spec.overrides[*].priority]: sent when the "
                          "object is created; afterwards differences under them plan nothing and are not drift.")
    protect: bool | None = Field(
        None, description="true: recorded in the store on apply; archiving the object (--prune, --replace) is "
                          "refused, even after this manifest is deleted, until protect: false is applied.")


SPEC_MODELS: dict[str, type[Spec]] = {
    "BillableMetric": BillableMetricSpec,
    "Product": ProductSpec,
    "RateCard": RateCardSpec,
    "Customer": CustomerSpec,
    "Contract": ContractSpec,
}

# Dependency order: an object only references kinds before it.
KIND_ORDER: tuple[str, ...] = ("BillableMetric", "Product", "RateCard", "Customer", "Contract")


def manifest_model(kind: str) -> type[BaseModel]:
    """The full document model of one kind (used for JSON Schema export)."""
    from pydantic import create_model

    return create_model(
        kind,
        __base__=Spec,
        apiVersion=(Literal[API_VERSION], ...),  # type: ignore[valid-type]
        kind=(Literal[kind], ...),  # type: ignore[valid-type]
        metadata=(Metadata, ...),
        spec=(SPEC_MODELS[kind], ...),
    )
