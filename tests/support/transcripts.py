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
