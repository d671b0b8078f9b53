"""In-memory doubles of fieldtui's ports for tests (``from fakes.fake_service import FakeService``)."""
