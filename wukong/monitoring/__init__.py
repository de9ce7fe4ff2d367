"""What a job tells about itself, apart from what the engine does.

Executors' metrics, task timelines and log lines; the client's progress bar and Dask callbacks;
the report a job leaves when it ends. Nothing here decides what the engine does: ``wukong.core``
records into these modules and the client reads them back. Drawing a saved report is
:mod:`wukong.report`.
"""
