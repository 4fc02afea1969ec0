"""One local Spark session for the whole test session (a JVM start costs seconds).

On a developer's machine without pyspark or Java the Spark tests are skipped with the reason; in CI
(CI=true, BILLING_RECONCILER_REQUIRE_POSTGRES or BILLING_RECONCILER_REQUIRE_SPARK, which .ci/run
sets) they fail instead: a green CI run means Spark's invoices were compared with DuckDB's."""

from __future__ import annotations

import os

import pytest


def spark_required() -> bool:
    return any(os.environ.get(name, "").strip().lower() in ("1", "true", "yes")
               for name in ("CI", "BILLING_RECONCILER_REQUIRE_POSTGRES", "BILLING_RECONCILER_REQUIRE_SPARK"))


def spark_unavailable(reason: str) -> None:
    if spark_required():
        pytest.fail(f"CI: the Spark tests must run but Spark cannot start: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def spark():
    from billing_reconciler.events.spark import SparkUnavailable, session

    try:
        # The tests' events are small: the JVM's quick compiler alone (C1) halves Spark's warm-up
        # here, and one shuffle partition without adaptive re-planning saves most of each query's
        # fixed cost. The queries, codegen and ANSI arithmetic are those of production.
        return session(java_options="-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
                       conf={"spark.sql.shuffle.partitions": "1", "spark.sql.adaptive.enabled": "false"})
    except SparkUnavailable as exc:
        spark_unavailable(str(exc))
