"""The tick engine: scheduler (plain data) -> step plan -> runner (torch) -> step result -> director."""
