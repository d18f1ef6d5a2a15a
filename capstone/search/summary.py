"""What answers say about the objects that answer a question, beyond counting them: a value
over them (`Summary`: time in view, speed, size) and how they divide by an attribute
(`Share`: per colour, direction, class, type or video)."""

from __future__ import annotations

from pydantic import BaseModel, Field

# value -> its name in words, and how one value is written
_WORDS = {
    "dur": ("time in view", "{:.1f} s"),
    "speed": ("speed", "{:.0f} px/s"),
    "speed_m_s": ("speed", "{:.1f} m/s"),
    "size": ("size", "{:.1%}"),
    "pause": ("pause", "{:.1f} s"),
}


NAMES = {value: name for value, (name, _) in _WORDS.items()}  # "dur" -> "time in view"


def written(value: str, number: float) -> str:
    """One value in words, as answers write it: `written("speed", 51.2)` -> "51 px/s".

    >>> written("dur", 4.04), written("size", 0.006)
    ('4.0 s', '0.6%')
    """
    return _WORDS[value][1].format(number)


class Summary(BaseModel):
    """A value over the matching objects (`capstone.search.tracks.summary`): how many have
    it, its mean, median and range."""

    value: str = Field(
        description="dur (s), speed (px/s), speed_m_s (m/s), size (of the frame) or pause (s)"
    )
    n: int
    mean: float | None = None
    median: float | None = None
    min: float | None = None
    max: float | None = None

    def words(self, what: str) -> str:
        """The summary as a sentence about `what` ("people", "red cars").

        >>> Summary(value="dur", n=3, mean=4.0, median=3.5, min=1.0, max=7.5).words("people")
        'The average time in view of 3 people: 4.0 s (median 3.5 s, from 1.0 s to 7.5 s).'
        >>> Summary(value="size", n=2, mean=0.012, median=0.012, min=0.01, max=0.014).words("cars")
        'The average size of 2 cars: 1.2% of the frame (median 1.2%, from 1.0% to 1.4%).'
        """
        name = _WORDS[self.value][0]
        if not self.n or self.mean is None:
            return f"No {what} with a known {name}."
        mean, median, low, high = (
            written(self.value, v)
            for v in (self.mean, self.median, self.min, self.max)  # type: ignore[arg-type]
        )
        if self.value == "size":
            mean += " of the frame"
        spread = f"median {median}, from {low} to {high}"
        return f"The average {name} of {self.n} {what}: {mean} ({spread})."


class Share(BaseModel):
    """The objects with one value of an attribute (`capstone.search.tracks.breakdown`)."""

    value: str | None = Field(description="the attribute's value; None: not known")
    count: int = Field(description="distinct objects (identities, else tracks) with it")
