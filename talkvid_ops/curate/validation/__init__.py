"""Human validation of the filters: borderline samples of a criterion's rule (`draw`), people's accept / reject
labels (`annotations`, the page in `views`), agreement of the filter with them (`agreement`) and bounds calibrated on
them (`calibration`). `talkvid validate ...` is `cli`.
"""
