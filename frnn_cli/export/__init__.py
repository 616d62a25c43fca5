"""Export run folders into an experiment tracker (MLflow), never in the training path.

* :mod:`frnn_cli.export.folders` reads a train, sweep or compare folder into a tree of runs
  (no tracker involved);
* :mod:`frnn_cli.export.stores` checks a tracking URI (reachable, writable) and hides its
  passwords, before MLflow touches it;
* :mod:`frnn_cli.export.mlflow_store` writes that tree into an MLflow store (MLflow is an
  optional extra, imported only there, only when ``frnn export`` runs).
"""
