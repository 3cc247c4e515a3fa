"""Every log dialect a Wechaty bot writes, turned into events; one module per dialect family."""
