"""The catalog dashboard: what the pipeline holds, what failed and why, what was released, as a page and as JSON.

A FastAPI app (`app.create_app`) over the catalog report (`report`) and its server-rendered page (`page`). It needs
no Airflow: `plugins/talkvid_catalog.py` mounts it in Airflow's API server and hands it Airflow's login check.
"""
