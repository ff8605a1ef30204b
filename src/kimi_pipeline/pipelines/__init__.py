"""One Kedro pipeline per stage; stages meet only in the catalog."""
