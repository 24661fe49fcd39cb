"""Short, realistic transcripts for tests, each clearly about one thing."""

DENTIST = """Alice: So the dentist said my crown is cracked and I need to book a replacement.
Dr. Patel: Yes, the crown on the lower left molar has a hairline fracture. We should replace it soon.
Alice: How much is that going to cost me?
Dr. Patel: About twelve hundred dollars, and your insurance covers half of it.
Alice: Okay. Can we do it next Tuesday at 3pm?
Dr. Patel: Tuesday at 3 works, the appointment takes about an hour.
Alice: Remind me to take the afternoon off work."""

BUDGET = """Ben: Let's go over the monthly budget before the mortgage payment goes out.
Maya: Rent was fine, but the grocery bill was six hundred and forty dollars this month.
Ben: We should cut back on takeout, that was almost three hundred on its own.
Maya: And the car insurance renewal is due, it went up to one thousand one hundred a year.
Ben: I need to call the bank about refinancing the mortgage at a lower rate."""

STANDUP = """Carmen: Morning everyone, quick standup. The billing service migration is almost done.
Raj: I finished the database schema changes, the deploy is blocked on the code review.
Carmen: Okay, let's get the review done today so we can ship on Thursday.
Lena: I'm still fixing the flaky integration tests in the payments pipeline.
Carmen: We should pair on that after lunch. The sprint demo is on Friday at 10am."""

RECITAL = """Dmitri: Sofia's piano recital is this Saturday at the community hall.
Anna: Right, it starts at 2pm and she's playing the Chopin nocturne.
Dmitri: Don't forget to pick up the flowers for her teacher on the way.
Anna: My parents are coming too, they'll meet us there.
Dmitri: Let's take her out for ice cream afterwards, she's been practicing so hard."""

GARDEN = """Alice: I want to redo the vegetable garden this spring, raised beds along the fence.
Sam: Tomatoes need full sun, so put them on the south side.
Alice: And the herbs, basil, parsley and rosemary, near the kitchen door.
Sam: You should get a drip irrigation kit, watering by hand takes forever."""


def long_transcript(turns: int = 60) -> str:
    lines = []
    for i in range(turns):
        speaker = "Alice" if i % 2 == 0 else "Ben"
        lines.append(
            f"{speaker}: On day {i} of the trip we talked about the itinerary, the hotel in Lisbon, "
            f"the train to Porto at {8 + i % 10} o'clock and the museum tickets that cost {10 + i} euros."
        )
    return "\n".join(lines)


# Two topics of four conversations each, for clusters.
HEALTH = [
    """Alice: The dentist says my crown is cracked and the molar needs a new crown.
Dr. Patel: The dentist appointment is Tuesday, we will numb the tooth and fit the crown.""",
    """Alice: My tooth aches again, I think the filling fell out.
Nurse: The dentist can see you tomorrow to check the tooth and replace the filling.""",
    """Alice: At the dentist today they cleaned my teeth and found a cavity in a molar.
Dr. Patel: Floss every night and we will fill the cavity next week.""",
    """Alice: My gums bleed when I brush my teeth.
Hygienist: Use a soft toothbrush, and the dentist will look at your gums at the checkup.""",
]
MONEY = [
    """Ben: Let's go over the monthly budget, groceries cost six hundred dollars.
Maya: We should save more money and cut the takeout spending in the budget.""",
    """Ben: The mortgage payment and the rent deposit both come out of the savings account.
Maya: Then the budget is tight this month, we need to spend less money.""",
    """Ben: I moved five hundred dollars into the savings account for the holiday budget.
Maya: Good, and the credit card bill is paid, so no interest this month.""",
    """Maya: Our taxes are due, and the accountant says we owe two thousand dollars.
Ben: We can pay the tax bill from savings and rebuild the budget next month.""",
]
