"""Sentence templates for reading scripts: everyday frames around any kind of term.

The terms may be model names, drugs, products or places, so every frame treats a slot as
a plain noun phrase and says nothing that would be wrong for some field. Nor for a plural
term ("café au lait spots", "AirPods"): no verb after a slot agrees with it ("{a} was",
"is {a}"), no "it" refers back to it, and no article stands before it ("a Ozempic", "a
5-FU"). Each frame gives the term a natural context (a verb before it, words after it) so
the recording carries the term as it is spoken in running speech, not read out of a list.
Slots are ``{a}``, ``{b}``, ``{c}``; the text around a slot never glues a letter or digit
onto it, so the term stays findable with :func:`vocabtune.vocab.find_term`. Hand-written:
offline, and no language model to invent facts about the person's terms.
"""

from __future__ import annotations

ONE = (
    "Yesterday I read a note about {a}.",
    "My colleague mentioned {a} twice in the meeting.",
    "The next slide is about {a}.",
    "I wrote {a} on the whiteboard as a reminder for everyone.",
    "Can you remind me what we decided about {a}?",
    "Everyone in the team has an opinion on {a}.",
    "Last week the whole discussion was about {a}.",
    "She asked whether the notes on {a} were ready for Monday.",
    "I spent the morning reading about {a}.",
    "There is a short chapter on {a} in the handbook.",
    "We should write down what we learned from {a}.",
    "He keeps bringing up {a} in every conversation.",
    "The report says very little about {a}.",
    "Before lunch, let us go over {a} once more.",
    "I first heard of {a} at a conference.",
    "Please add {a} to the agenda for tomorrow.",
    "The question about {a} came up again today.",
    "Honestly, {a} turned out easier than I expected.",
    "Our notes on {a} are in the shared folder.",
    "A friend recommended {a} to me last month.",
    "It took me a while to understand {a}.",
    "The newsletter had a long piece on {a}.",
    "If you have time, take a look at {a}.",
    "Nobody on the call had tried {a} before.",
    "I would not make a decision about {a} today.",
    "The slides about {a} need one more example.",
    "We talked about {a} on the way home.",
    "Do you think {a} would be worth the effort?",
    "The first thing on my list is {a}.",
    "I made a short summary of {a} for the others.",
    "After the break we will come back to {a}.",
    "The article explains {a} in plain words.",
    "Let me spell out what {a} could mean for us.",
    "In the end, {a} turned out to be the right choice.",
    "I still have questions about {a}.",
    "The training session covered {a} in detail.",
)

TWO = (
    "We compared {a} with {b} before choosing one.",
    "First we tried {a}, and then we moved on to {b}.",
    "Some people prefer {a}, others swear by {b}.",
    "The handout explains {a} on one page and {b} on the next.",
    "I mixed up {a} and {b} during the presentation.",
    "Would you say {a} and {b} are related, or separate things?",
    "My notes mention {a} right after {b}.",
    "She explained {a} first, then showed us {b}.",
    "We spent an hour on {a} and only ten minutes on {b}.",
    "The review put {a} next to {b} in one table.",
    "You can learn {a} before {b}, but not the other way round.",
    "He asked me to check {a} while he looked at {b}.",
    "Our plan mentions {a}, but the budget only covers {b}.",
    "Without {a}, the part about {b} makes little sense.",
    "I keep a list that starts with {a} and ends with {b}.",
    "The email was about {a}, not about {b}.",
    "Today we discussed {a}; tomorrow we will discuss {b}.",
    "After the workshop on {a} came a talk on {b}.",
)

THREE = (
    "The agenda lists {a}, {b} and {c}, in that order.",
    "We looked at {a}, {b} and {c} before the deadline.",
    "I wrote a paragraph each on {a}, {b} and {c}.",
    "Between {a}, {b} and {c}, I would start with the first.",
    "The course covers {a} in week one, {b} in week two and {c} in week three.",
    "She compared {a} and {b}, and then brought up {c}.",
    "My reading list has {a}, {b} and {c} on it.",
    "If nothing comes of {a}, we try {b}, and then {c}.",
    "The glossary defines {a}, {b} and {c} on the same page.",
)

TEMPLATES: tuple[tuple[str, ...], ...] = (ONE, TWO, THREE)   # index + 1 = slots
SLOTS = ("a", "b", "c")
