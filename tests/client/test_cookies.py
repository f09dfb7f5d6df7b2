from hypothesis import given
from hypothesis import strategies as st

from concentrador.client.cookies import MAX_COOKIES, CookieStore


def test_named_cookie_is_sent_back_without_attributes():
    store = CookieStore()
    store.absorb(["JSESSIONID=abc123; Path=/; Secure; HttpOnly"])
    assert store.header() == "JSESSIONID=abc123"


def test_nameless_axis_cookie_is_kept_and_sent_as_bare_value():
    # SimpleAxisServer: "Set-Cookie: 0" and "Set-Cookie2: 0".
    store = CookieStore()
    store.absorb(["0", "0"])
    assert store.header() == "0"


def test_named_and_nameless_cookies_together_keep_their_order():
    store = CookieStore()
    store.absorb(["a=1", "7", "b=2"])
    assert store.header() == "a=1; 7; b=2"


def test_later_value_replaces_and_max_age_zero_deletes():
    store = CookieStore()
    store.absorb(["a=1", "b=2"])
    store.absorb(["a=3"])
    assert store.header() == "a=3; b=2"
    store.absorb(["b=gone; Max-Age=0"])
    assert store.header() == "a=3"


def test_empty_store_sends_nothing():
    store = CookieStore()
    store.absorb(["", "   ", "=;"])
    assert store.header() is None


def test_hostile_peer_cannot_grow_the_store_without_bound():
    store = CookieStore()
    store.absorb(f"c{i}=v" for i in range(1000))
    assert len(store) == MAX_COOKIES
    store.absorb(["x" * 10_000])
    assert store.get("") is None


@given(
    st.dictionaries(
        st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,8}", fullmatch=True),
        st.from_regex(r"[A-Za-z0-9]{1,12}", fullmatch=True),
        max_size=10,
    )
)
def test_round_trip_of_named_cookies(cookies):
    store = CookieStore()
    store.absorb(f"{k}={v}; Path=/" for k, v in cookies.items())
    expected = "; ".join(f"{k}={v}" for k, v in cookies.items()) or None
    assert store.header() == expected
