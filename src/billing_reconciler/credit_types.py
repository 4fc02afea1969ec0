"""Credit types: the fiat USD type every amount is in unless it names another.

Credit types are made in Metronome's app, never through the API: the API lists them. Every
amount the API types with a credit type is sent with `credit_type_id`, this id by default.
"""

USD_CREDIT_TYPE_ID = "2714e483-4ff1-48e4-9e25-ac732e8f24f2"
