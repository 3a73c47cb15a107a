

def test_a_lost_peer_is_a_user_error_and_other_runtime_errors_stay_bugs() -> None:
    from engine.distributed import DistributedError, peer_failures_reported
    # gloo names its source file in the message of a collective that a dead peer broke.
    with pytest.raises(DistributedError, match=r"^lost contact with the other processes \(\[/src/gloo/pair.cc:1\] "
                                               r"Connection closed by peer\)$"):
        with peer_failures_reported():
            raise RuntimeError("[/src/gloo/pair.cc:1] Connection closed by peer\nmore detail")
    with pytest.raises(RuntimeError, match="^a bug$") as bug:
        with peer_failures_reported():
            raise RuntimeError("a bug")
    assert not isinstance(bug.value, UserError)
