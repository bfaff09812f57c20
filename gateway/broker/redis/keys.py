"""Where the Redis broker keeps what: key and channel names (pure)."""

from __future__ import annotations


class Keys:
    """Names under the key prefix; the user id in braces is a cluster hash tag: a user's keys share a slot."""

    def __init__(self, prefix: str, cluster: bool) -> None:
        self.prefix = prefix
        self.cluster = cluster
        self._live = f"{prefix}:live:"

    def state(self, user_id: str, call_key: str) -> str:
        return f"{self.prefix}:{{{user_id}}}:call:{call_key}"

    def history(self, user_id: str) -> str:
        return f"{self.prefix}:{{{user_id}}}:history"

    def burnt(self, token_id: str) -> str:
        return f"{self.prefix}:burnt:{token_id}"

    def value(self, key: str) -> str:
        return f"{self.prefix}:value:{key}"

    def bound(self, user_id: str, call_key: str) -> str:
        return f"{self.prefix}:{{{user_id}}}:joins:{call_key}"

    def pending(self, user_id: str, remote: str) -> str:
        return f"{self.prefix}:{{{user_id}}}:dialling:{remote}"

    def request(self, user_id: str, request_key: str) -> str:
        return f"{self.prefix}:{{{user_id}}}:dial-request:{request_key}"

    def dial_mark(self, user_id: str, number: str) -> str:
        return f"{self.prefix}:{{{user_id}}}:dial-hold:{number}"

    def dial_held(self, user_id: str, number: str) -> str:
        return f"{self.prefix}:{{{user_id}}}:dial-held:{number}"

    def claimed(self, user_id: str, event_id: str) -> str:
        return f"{self.prefix}:{{{user_id}}}:claimed:{event_id}"

    def acked(self, user_id: str) -> str:
        return f"{self.prefix}:{{{user_id}}}:acked"

    def wrap_ups(self, user_id: str) -> str:
        return f"{self.prefix}:{{{user_id}}}:wrap-ups"

    def window(self, user_id: str, name: str) -> str:
        return f"{self.prefix}:{{{user_id}}}:rate:{name}"

    def epoch(self) -> str:
        return f"{self.prefix}:epoch"

    def control(self) -> str:
        return f"{self.prefix}:control"

    def channel(self, user_id: str) -> str:
        # On a cluster the user id is the hash tag, so that the channel is
        # in the slot of the user's keys, which the script publishing to it
        # touches.
        if self.cluster:
            return f"{self._live}{{{user_id}}}"
        return f"{self._live}{user_id}"

    def user_of(self, channel: str) -> str | None:
        if not channel.startswith(self._live):
            return None
        user_id = channel[len(self._live) :]
        return user_id[1:-1] if self.cluster else user_id
