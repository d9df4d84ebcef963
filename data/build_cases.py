"""Build data/cases.jsonl (and the counts table in data/README.md) from the cases written below.

Run:  .venv/bin/python -m attnlens.data.build_cases

Why a script: the arithmetic cases are generated (deterministically, random.Random(SEED)), the ids are
assigned in list order, and every case is validated with evaluation.cases before anything is written -
including that its own answer_hint passes its check. The handwritten cases live here as Python rows
(prompt, check, evidence, answer_hint) so that the checks can be written with short helpers.

Ids are stable only if rows are never reordered or deleted: append new rows at the end of a list, and
replace a retired row with None (its number is then skipped, not reused).
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

from attnlens.evaluation.cases import CATEGORIES, Case, check_answer

HERE = Path(__file__).resolve().parent
SEED = 20241121
OUT = HERE / "cases.jsonl"
README = HERE / "README.md"
TABLE_START, TABLE_END = "<!-- counts:start -->", "<!-- counts:end -->"


# --------------------------------------------------------------------------- check helpers


def acc(*answers: str) -> dict:
    return {"type": "accepted", "answers": list(answers)}


def rx(pattern: str, ignore_case: bool = True) -> dict:
    check = {"type": "regex", "pattern": pattern}
    if not ignore_case:
        check["ignore_case"] = False
    return check


def num(value: float, tolerance: float = 0, position: str = "new") -> dict:
    check = {"type": "numeric", "value": value, "tolerance": tolerance}
    if position != "new":
        check["position"] = position
    return check


def named(name: str, **args) -> dict:
    return {"type": "named", "name": name, "args": args}


def all_of(*checks: dict) -> dict:
    return {"type": "all", "checks": list(checks)}


def words(lo: int | None = None, hi: int | None = None) -> dict:
    args = {k: v for k, v in (("min", lo), ("max", hi)) if v is not None}
    return named("word_count", **args)


def include(*ws: str) -> dict:
    return named("must_include", words=list(ws))


def exclude(*ws: str) -> dict:
    return named("must_exclude", words=list(ws))


def code(function: str | None = None) -> dict:
    return named("python_code", function=function) if function else named("python_code")


def premise(claim: str | tuple[str, ...], *corrections: str) -> dict:
    """The answer must negate `claim` (the false part of the premise, with its variants) or state a
    correction without stating the claim."""
    claim = (claim,) if isinstance(claim, str) else claim
    args = {"claim": list(claim), "corrections": list(corrections)} if corrections else {"claim": list(claim)}
    return named("rejects_premise", **args)


def items(n: int) -> dict:
    return named("list_items", n=n)


def starts(prefix: str) -> dict:
    return named("starts_with", prefix=prefix)


def json_keys(*keys: str) -> dict:
    return named("json_object", keys=list(keys))


CAPS = named("all_caps")
YES = rx(r"^\W*yes\b")
NO = rx(r"^\W*no\b")
NO_CAPITALS = rx(r"^[^A-Z]*$", ignore_case=False)


def choice(right: str | tuple[str, ...], *wrong: str, says: tuple[str, ...] = ()) -> dict:
    """Which candidate the answer picks (evaluation.cases.ChoiceCheck): a sentence echoed from the
    prompt decides nothing; a clause stating `says` decides by the candidate it names."""
    right = (right,) if isinstance(right, str) else right
    check = {"type": "choice", "right": list(right), "wrong": list(wrong)}
    if says:
        check["says"] = list(says)
    return check


def story(*must: str, hi: int = 40) -> dict:
    return all_of(include(*must), words(5, hi))


# --------------------------------------------------------------------------- factual recall

SIMPLE_FACTS = [
    ("What is the capital of France?", acc("Paris"), ["capital", "France"], "Paris"),
    ("What is the capital of Japan?", acc("Tokyo"), ["capital", "Japan"], "Tokyo"),
    ("What is the capital of Italy?", acc("Rome"), ["capital", "Italy"], "Rome"),
    ("What is the capital of Egypt?", acc("Cairo"), ["capital", "Egypt"], "Cairo"),
    ("What is the capital of Canada?", acc("Ottawa"), ["capital", "Canada"], "Ottawa"),
    ("What is the capital of Australia?", acc("Canberra"), ["capital", "Australia"], "Canberra"),
    ("What is the capital of Spain?", acc("Madrid"), ["capital", "Spain"], "Madrid"),
    ("What is the chemical symbol for gold?", acc("Au"), ["chemical symbol", "gold"], "Au"),
    ("What is the chemical symbol for sodium?", acc("Na"), ["chemical symbol", "sodium"], "Na"),
    ("Which planet is known as the Red Planet?", acc("Mars"), ["Red Planet"], "Mars"),
    ("What is the largest planet in our Solar System?", acc("Jupiter"), ["largest", "planet"], "Jupiter"),
    ("Who wrote Romeo and Juliet?", acc("Shakespeare"), ["wrote", "Romeo and Juliet"], "William Shakespeare"),
    ("Who wrote Pride and Prejudice?", acc("Austen"), ["wrote", "Pride and Prejudice"], "Jane Austen"),
    ("Who painted the Mona Lisa?", acc("Leonardo", "da Vinci"), ["painted", "Mona Lisa"], "Leonardo da Vinci"),
    ("At what temperature in Celsius does water boil at sea level?", num(100), ["water", "boil", "Celsius", "sea level"], "100 degrees Celsius"),
    ("How many legs does a spider have?", num(8), ["legs", "spider"], "8"),
    ("What gas do plants take in from the air for photosynthesis?", acc("carbon dioxide", "CO2"), ["gas", "plants", "photosynthesis"], "Carbon dioxide"),
    ("What is the chemical formula for water?", acc("H2O"), ["chemical formula", "water"], "H2O"),
    ("What is the largest ocean on Earth?", acc("Pacific"), ["largest", "ocean"], "The Pacific Ocean"),
    ("Which element has the atomic number 1?", acc("hydrogen"), ["element", "atomic number 1"], "Hydrogen"),
    ("What is the currency of Japan?", acc("yen"), ["currency", "Japan"], "The yen"),
    ("What language is mainly spoken in Brazil?", acc("Portuguese"), ["language", "Brazil"], "Portuguese"),
    ("Who wrote the novel 1984?", acc("Orwell"), ["wrote", "1984"], "George Orwell"),
    ("What is the tallest mountain on Earth above sea level?", acc("Everest"), ["tallest mountain", "above sea level"], "Mount Everest"),
    ("Which organ pumps blood around the body?", acc("heart"), ["organ", "pumps blood"], "The heart"),
    ("How many sides does a hexagon have?", num(6), ["sides", "hexagon"], "Six"),
    ("What is the freezing point of water in degrees Fahrenheit?", num(32), ["freezing point", "water", "Fahrenheit"], "32 degrees Fahrenheit"),
    ("Who developed the theory of relativity?", acc("Einstein"), ["theory of relativity"], "Albert Einstein"),
]

MULTI_HOP = [
    ("What is the capital of the country where the Eiffel Tower stands?", acc("Paris"), ["capital", "Eiffel Tower"], "Paris"),
    ("What language is spoken in the country whose capital is Madrid?", acc("Spanish", "Castilian"), ["language", "Madrid"], "Spanish"),
    ("What is the capital of the country where the Colosseum is?", acc("Rome"), ["capital", "Colosseum"], "Rome"),
    ("What is the currency of the country whose capital is Tokyo?", acc("yen"), ["currency", "Tokyo"], "The Japanese yen"),
    ("On which continent is the country whose capital is Nairobi?", acc("Africa"), ["continent", "Nairobi"], "Africa"),
    ("What is the capital of the largest country in South America?", acc("Brasilia"), ["capital", "largest country", "South America"], "Brasília"),
    ("Which country was the first person to walk on the Moon from?", acc("United States", "USA", "U.S.", "U.S.A.", "America"), ["country", "first person to walk on the Moon"], "The United States"),
    ("What is the name of the giant storm on the largest planet in our Solar System?", acc("Great Red Spot", "Red Spot"), ["storm", "largest planet"], "The Great Red Spot"),
    ("In which country was the author of Romeo and Juliet born?", acc("England", "Stratford"), ["country", "born", "Romeo and Juliet"], "England"),
    ("What is the capital of the country where the Great Pyramid of Giza stands?", acc("Cairo"), ["capital", "Great Pyramid of Giza"], "Cairo"),
    ("What is the capital of the country whose flag shows a red maple leaf?", acc("Ottawa"), ["capital", "red maple leaf"], "Ottawa"),
    ("What language is spoken in the country whose capital is Lisbon?", acc("Portuguese"), ["language", "Lisbon"], "Portuguese"),
    ("What is the larger of the two moons of the Red Planet called?", acc("Phobos"), ["larger", "moons", "Red Planet"], "Phobos"),
    ("How many legs does the insect that makes honey have?", num(6), ["legs", "insect", "honey"], "Six"),
    ("Who created the detective who lives at 221B Baker Street?", acc("Doyle"), ["created", "detective", "221B Baker Street"], "Arthur Conan Doyle"),
    ("What is the capital of the country where the Acropolis stands?", acc("Athens"), ["capital", "Acropolis"], "Athens"),
    ("What is the currency of the country where Big Ben stands?", acc("pound", "pounds", "sterling"), ["currency", "Big Ben"], "The pound sterling"),
    ("Who taught the philosopher who tutored Alexander the Great?", acc("Plato"), ["taught", "tutored", "Alexander the Great"], "Plato"),
    ("What is the capital of the country where the Taj Mahal is?", acc("New Delhi", "Delhi"), ["capital", "Taj Mahal"], "New Delhi"),
    ("What is the official language of the country whose capital is Buenos Aires?", acc("Spanish", "Castilian"), ["language", "Buenos Aires"], "Spanish"),
    ("Which ocean is on the west coast of the country whose capital is Washington, D.C.?", acc("Pacific"), ["ocean", "west coast", "Washington, D.C."], "The Pacific Ocean"),
    ("What is the main language of the country whose capital is Berlin?", acc("German"), ["language", "Berlin"], "German"),
    ("Which planet comes right after ours, moving away from the Sun?", acc("Mars"), ["planet", "after ours", "away from the Sun"], "Mars"),
    ("Which river flows through the capital of the United Kingdom?", acc("Thames"), ["river", "capital", "United Kingdom"], "The Thames"),
    ("Which river flows through the capital of France?", acc("Seine"), ["river", "capital", "France"], "The Seine"),
    ("What is the chemical symbol of the metal that a first-place Olympic medal is named after?", acc("Au"), ["chemical symbol", "metal", "first-place Olympic medal"], "Au (gold)"),
    ("What color do you get by mixing blue paint with paint the color of a ripe banana?", acc("green"), ["mixing", "blue", "ripe banana"], "Green"),
    ("In which language did the author of Don Quixote write?", acc("Spanish", "Castilian"), ["language", "author", "Don Quixote"], "Spanish"),
]

TEMPORAL = [
    ("In what year did World War II end?", acc("1945"), ["year", "World War II", "end"], "1945"),
    ("In what year did humans first land on the Moon?", acc("1969"), ["year", "first land", "Moon"], "1969"),
    ("In what year did the Titanic sink?", acc("1912"), ["year", "Titanic", "sink"], "1912"),
    ("In what year did Columbus first reach the Americas?", acc("1492"), ["year", "Columbus", "first reach the Americas"], "1492"),
    ("In what year did World War I begin?", acc("1914"), ["year", "World War I", "begin"], "1914"),
    ("In what year did the Berlin Wall fall?", acc("1989"), ["year", "Berlin Wall", "fall"], "1989"),
    ("In what year was the US Declaration of Independence adopted?", acc("1776"), ["year", "Declaration of Independence"], "1776"),
    ("In what year did the French Revolution begin?", acc("1789"), ["year", "French Revolution", "begin"], "1789"),
    ("In what year did the Soviet Union dissolve?", acc("1991"), ["year", "Soviet Union", "dissolve"], "1991"),
    ("In what year was the Battle of Hastings fought?", acc("1066"), ["year", "Battle of Hastings"], "1066"),
    ("In what year was Sputnik 1 launched?", acc("1957"), ["year", "Sputnik 1", "launched"], "1957"),
    ("In what year did the Wright brothers make their first powered flight?", acc("1903"), ["year", "Wright brothers", "first powered flight"], "1903"),
    ("In what year did the American Civil War end?", acc("1865"), ["year", "American Civil War", "end"], "1865"),
    ("In what year was the Eiffel Tower completed?", acc("1889"), ["year", "Eiffel Tower", "completed"], "1889"),
    ("In what year did the Great Fire of London happen?", acc("1666"), ["year", "Great Fire of London"], "1666"),
    ("In what year did Yuri Gagarin become the first person in space?", acc("1961"), ["year", "Yuri Gagarin", "first person in space"], "1961"),
    ("In what year did Nelson Mandela become President of South Africa?", acc("1994"), ["year", "Nelson Mandela", "President of South Africa"], "1994"),
    ("In what year was the Magna Carta sealed?", acc("1215"), ["year", "Magna Carta"], "1215"),
    ("Which month comes after March?", acc("April"), ["month", "after", "March"], "April"),
    ("Which day of the week comes after Friday?", acc("Saturday"), ["day of the week", "after", "Friday"], "Saturday"),
    ("How many days are in a leap year?", num(366), ["days", "leap year"], "366"),
    ("How many months are in a year?", num(12), ["months", "year"], "12"),
    ("In which century was the year 1850?", acc("19th", "nineteenth"), ["century", "1850"], "The 19th century"),
    ("What is the last month of the year?", acc("December"), ["last month", "year"], "December"),
    ("How many hours are in a day?", num(24), ["hours", "day"], "24"),
    ("Which season comes after winter?", acc("spring"), ["season", "after", "winter"], "Spring"),
    ("How many minutes are in an hour?", num(60), ["minutes", "hour"], "60"),
    ("Which month comes before June?", acc("May"), ["month", "before", "June"], "May"),
]

# --------------------------------------------------------------------------- reasoning

DEDUCTION = [
    ("All cats are animals. Tom is a cat. Is Tom an animal?", YES, ["All cats are animals", "Tom is a cat"], "Yes, Tom is an animal."),
    ("All birds in the zoo can fly. Pip is a bird in the zoo. Can Pip fly?", YES, ["All birds in the zoo can fly", "Pip is a bird in the zoo"], "Yes, Pip can fly."),
    ("Fish cannot walk. Nemo is a fish. Can Nemo walk?", NO, ["Fish cannot walk", "Nemo is a fish"], "No, Nemo cannot walk."),
    ("Anna is taller than Ben. Ben is taller than Carl. Who is the shortest?", choice("Carl", "Anna", "Ben"), ["taller than Ben", "taller than Carl", "shortest"], "Carl"),
    ("Anna is taller than Ben. Ben is taller than Carl. Who is the tallest?", choice("Anna", "Ben", "Carl"), ["Anna is taller", "Ben is taller", "tallest"], "Anna"),
    ("If it rains, the ground gets wet. It is raining. Is the ground wet?", YES, ["If it rains, the ground gets wet", "It is raining"], "Yes, the ground is wet."),
    ("Every square is a rectangle. Shape X is a square. Is shape X a rectangle?", YES, ["Every square is a rectangle", "Shape X is a square"], "Yes, shape X is a rectangle."),
    ("Lisa is older than Mark. Mark is older than Nina. Is Nina older than Lisa?", NO, ["Lisa is older than Mark", "Mark is older than Nina"], "No, Nina is younger than Lisa."),
    ("The red box is left of the blue box. The blue box is left of the green box. Which box is in the middle?", choice("blue", "red", "green"), ["red box is left of the blue box", "blue box is left of the green box", "middle"], "The blue box"),
    ("All roses are flowers. Some flowers are red. Must every rose be red?", NO, ["All roses are flowers", "Some flowers are red", "every rose"], "No, not every rose must be red."),
    ("Every even number is divisible by 2. 14 is even. Is 14 divisible by 2?", YES, ["Every even number is divisible by 2", "14 is even"], "Yes, 14 is divisible by 2."),
    ("Kim has more books than Leo. Leo has more books than Max. Who has the fewest books?", choice("Max", "Kim", "Leo"), ["more books than Leo", "more books than Max", "fewest"], "Max"),
    ("Only members can enter the club. Dan is not a member. Can Dan enter the club?", NO, ["Only members can enter", "Dan is not a member"], "No, Dan cannot enter."),
    ("Either the light is on or the room is dark. The light is not on. Is the room dark?", YES, ["Either the light is on or the room is dark", "The light is not on"], "Yes, the room is dark."),
    ("All dogs bark. Rex does not bark. Is Rex a dog?", NO, ["All dogs bark", "Rex does not bark"], "No, Rex is not a dog."),
    ("Jack arrived before Jill. Jill arrived before Jim. Who arrived last?", choice("Jim", "Jack", "Jill"), ["Jack arrived before Jill", "Jill arrived before Jim", "last"], "Jim"),
    ("The cup is on the table. The table is in the kitchen. In which room is the cup?", acc("kitchen"), ["cup is on the table", "table is in the kitchen", "room"], "The kitchen"),
    ("If Sam studies, he passes. Sam did not pass. Did Sam study?", NO, ["If Sam studies, he passes", "Sam did not pass"], "No, Sam did not study."),
    ("The apple is heavier than the plum. The grape is lighter than the plum. Which fruit is the lightest?", choice("grape", "apple", "plum"), ["apple is heavier than the plum", "grape is lighter than the plum", "lightest"], "The grape"),
    ("Every student in the class passed the test. Mia is a student in the class. Did Mia pass the test?", YES, ["Every student in the class passed", "Mia is a student in the class"], "Yes, Mia passed."),
    ("Ann, Bo and Cy each own one pet: a cat, a dog or a fish. Ann owns the dog. Bo does not own the fish. Which pet does Cy own?", choice("fish", "cat", "dog"), ["Ann owns the dog", "Bo does not own the fish", "Cy"], "The fish"),
    ("Reptiles do not have fur. A lizard is a reptile. Does a lizard have fur?", NO, ["Reptiles do not have fur", "A lizard is a reptile"], "No, a lizard has no fur."),
    ("Paul is Mary's father. Mary is Tim's mother. What is Paul to Tim?", acc("grandfather", "grandpa", "granddad", "grandparent"), ["Paul is Mary's father", "Mary is Tim's mother"], "Tim's grandfather"),
    ("The test is on the day after Monday. On which day is the test?", acc("Tuesday"), ["day after Monday"], "Tuesday"),
    ("All metals conduct electricity. Copper is a metal. Does copper conduct electricity?", YES, ["All metals conduct electricity", "Copper is a metal"], "Yes, copper conducts electricity."),
    ("If the alarm rings, Zoe wakes up. Zoe did not wake up. Did the alarm ring?", NO, ["If the alarm rings, Zoe wakes up", "Zoe did not wake up"], "No, the alarm did not ring."),
    ("Eva is first in a line and Finn stands right behind her. What position is Finn in?", acc("second", "2nd", "2", "two"), ["Eva is first", "right behind her"], "Second"),
    ("Ravi is taller than Sita but shorter than Tara. Who is the tallest?", choice("Tara", "Ravi", "Sita"), ["taller than Sita", "shorter than Tara", "tallest"], "Tara"),
]

# (prompt, value, evidence, hint); the value is the last number of a worked answer.
CHAIN_OF_THOUGHT = [
    ("Tom has 3 apples, buys 4 more, then eats 2. How many apples does he have now?", 3 + 4 - 2, ["3 apples", "buys 4 more", "eats 2"]),
    ("A box holds 6 eggs. How many eggs are in 4 full boxes plus 3 loose eggs?", 6 * 4 + 3, ["6 eggs", "4 full boxes", "3 loose eggs"]),
    ("Sara had 20 dollars. She spent 7 on lunch and 5 on a book. How many dollars are left?", 20 - 7 - 5, ["20 dollars", "spent 7", "5 on a book"]),
    ("There are 5 rows of 8 chairs. Then 6 chairs are taken away. How many chairs remain?", 5 * 8 - 6, ["5 rows of 8 chairs", "6 chairs are taken away"]),
    ("A pen costs 2 dollars and a notebook costs 3 dollars. How much do 2 pens and 2 notebooks cost in dollars?", 2 * 2 + 2 * 3, ["pen costs 2 dollars", "notebook costs 3 dollars", "2 pens and 2 notebooks"]),
    ("Ali reads 10 pages a day. How many pages does he read in 2 weeks?", 10 * 14, ["10 pages a day", "2 weeks"]),
    ("A farmer has 4 cows and 6 chickens. How many legs do these animals have in total?", 4 * 4 + 6 * 2, ["4 cows", "6 chickens", "legs"]),
    ("Lily is 8 years old. Her brother is twice her age. How old will her brother be in 3 years?", 8 * 2 + 3, ["8 years old", "twice her age", "in 3 years"]),
    ("A pizza has 8 slices. Four friends share 2 pizzas equally. How many slices does each friend get?", 8 * 2 // 4, ["8 slices", "Four friends", "2 pizzas"]),
    ("Jo walks 3 km to school and 3 km home each day. How many km does she walk in 5 days?", (3 + 3) * 5, ["3 km to school", "3 km home", "5 days"]),
    ("A shop had 50 shirts, sold 18, then received 12 more. How many shirts does it have now?", 50 - 18 + 12, ["50 shirts", "sold 18", "12 more"]),
    ("Each bag holds 7 marbles. Ben has 3 full bags and gives away 5 marbles. How many marbles does he have left?", 7 * 3 - 5, ["7 marbles", "3 full bags", "gives away 5"]),
    ("A rectangle is 6 cm long and 4 cm wide. What is its perimeter in cm?", 2 * (6 + 4), ["6 cm long", "4 cm wide", "perimeter"]),
    ("A car uses 5 liters of fuel per 100 km. How many liters does it use for 300 km?", 5 * 3, ["5 liters", "per 100 km", "300 km"]),
    ("Mia saves 4 dollars a week. After how many weeks will she have 36 dollars?", 36 // 4, ["4 dollars a week", "36 dollars"]),
    ("A class has 12 boys and 15 girls. 3 students are absent. How many students are present?", 12 + 15 - 3, ["12 boys", "15 girls", "3 students are absent"]),
    ("A baker makes 24 cookies and packs them in bags of 6. He sells 3 bags. How many bags are left?", 24 // 6 - 3, ["24 cookies", "bags of 6", "sells 3 bags"]),
    ("Kim is 9. Sam is 4 years older than Kim. How old will Sam be in 2 years?", 9 + 4 + 2, ["Kim is 9", "4 years older", "in 2 years"]),
    ("A ticket costs 12 dollars. How many dollars do 3 tickets cost with a 6 dollar discount on the total?", 12 * 3 - 6, ["12 dollars", "3 tickets", "6 dollar discount"]),
    ("A tank holds 40 liters and leaks 3 liters per hour. How many liters are left after 5 hours?", 40 - 3 * 5, ["40 liters", "3 liters per hour", "5 hours"]),
    ("There are 3 cats. Each cat has 4 kittens. How many cats and kittens are there in all?", 3 + 3 * 4, ["3 cats", "4 kittens", "cats and kittens"]),
    ("Ella buys 3 packs of 10 stickers and uses 12. How many stickers remain?", 3 * 10 - 12, ["3 packs of 10 stickers", "uses 12"]),
    ("A garden has 7 rows of 9 tulips. If 13 tulips are picked, how many are left?", 7 * 9 - 13, ["7 rows of 9 tulips", "13 tulips are picked"]),
    ("Max ran 2 km on Monday and twice as far on Tuesday. How many km did he run in total?", 2 + 2 * 2, ["2 km on Monday", "twice as far", "in total"]),
    ("A book has 120 pages. Kai has read a quarter of it. How many pages are left to read?", 120 - 120 // 4, ["120 pages", "a quarter"]),
    ("Three friends split a 45 dollar bill equally, then each adds a 2 dollar tip. How many dollars does each pay?", 45 // 3 + 2, ["Three friends", "45 dollar bill", "2 dollar tip"]),
    ("A bus has 30 passengers. At a stop 8 get off and 5 get on. How many passengers are on the bus now?", 30 - 8 + 5, ["30 passengers", "8 get off", "5 get on"]),
    ("Nora has 5 red pens and twice as many blue pens. How many pens does she have in all?", 5 + 5 * 2, ["5 red pens", "twice as many blue pens"]),
]

# --------------------------------------------------------------------------- creative generation

STORYTELLING = [
    ("Write a one-sentence story about a dragon.", story("dragon"), ["one-sentence", "dragon"], "A lonely dragon guarded an empty cave until a lost child brought it a song."),
    ("Tell a two-sentence story about a lost puppy.", story("puppy", hi=60), ["two-sentence", "lost puppy"], "A lost puppy wandered the rainy streets all night. At dawn, a baker found him and gave him a warm home."),
    ("Write the opening line of a story about a pirate ship.", story("ship"), ["opening line", "pirate ship"], "The pirate ship slid out of the fog with its black sails torn."),
    ("Write one sentence about a robot who learns to paint.", story("robot"), ["robot", "learns to paint"], "The old robot dipped its metal finger in blue paint and drew its first sky."),
    ("Tell a tiny story about a cat and the moon.", story("cat", "moon", hi=60), ["cat", "moon"], "Every night the cat climbed the roof to talk to the moon, and one night the moon answered."),
    ("Begin a fairy tale about a brave princess.", story("princess", hi=60), ["fairy tale", "brave princess"], "Once upon a time, a brave princess rode out alone to face the giant in the hills."),
    ("Write a one-sentence ghost story.", story("ghost"), ["one-sentence", "ghost story"], "The ghost in the attic only wanted someone to finish its crossword."),
    ("Describe a wizard's first day at school in one sentence.", story("wizard"), ["wizard", "first day at school", "one sentence"], "The young wizard accidentally turned his teacher's chalk into a singing bird."),
    ("Write a short story about a snowman on a summer day.", story("snowman", hi=80), ["snowman", "summer day"], "The snowman woke up on a hot summer day and hurried into the shade of the old freezer shed."),
    ("Tell a one-sentence story about a turtle who wins a race.", story("turtle"), ["one-sentence", "turtle", "wins a race"], "The slow turtle kept walking while the hare slept, and crossed the finish line first."),
    ("Write a short fable about a fox and a crow.", story("fox", "crow", hi=80), ["fable", "fox", "crow"], "A fox praised a crow's voice until she sang and dropped her cheese, which the fox ate."),
    ("Write a one-sentence adventure about a girl who finds a map.", story("map"), ["one-sentence", "girl", "finds a map"], "A girl found a map in her grandmother's coat and sailed off to find the island it showed."),
    ("Tell a short story about an astronaut who misses home.", story("astronaut", hi=80), ["astronaut", "misses home"], "The astronaut looked down at the blue Earth every evening and pretended she could see her garden."),
    ("Write a one-sentence story set in a haunted castle.", story("castle"), ["one-sentence", "haunted castle"], "In the haunted castle, the portraits whispered warnings to every guest."),
    ("Write the opening of a bedtime story about a sleepy bear.", story("bear", hi=60), ["bedtime story", "sleepy bear"], "Deep in the forest lived a sleepy bear who could never stay awake for dinner."),
    ("Tell a one-sentence story about a talking tree.", story("tree"), ["one-sentence", "talking tree"], "The talking tree told the children a secret about the river every spring."),
    ("Write a short story about a detective and a missing cake.", story("cake", hi=80), ["detective", "missing cake"], "The detective followed a trail of crumbs and found the missing cake under the dog's bed."),
    ("Write one sentence about a mermaid who visits a city.", story("mermaid"), ["mermaid", "visits a city"], "The mermaid rode a bicycle through the city and laughed at the noisy cars."),
    ("Tell a tiny story about a dog who learns to fly.", story("dog", hi=60), ["dog", "learns to fly"], "The little dog jumped off the hill with a kite tied to his collar and floated over the town."),
    ("Write a short story that begins with \"Once upon a time\".", all_of(starts("Once upon a time"), words(8, 80)), ["begins with", "Once upon a time"], "Once upon a time, a shy baker baked a cake so big that the whole village came to share it."),
    ("Write a one-sentence story about a knight and a dragon.", story("knight", "dragon"), ["one-sentence", "knight", "dragon"], "The knight put down his sword and shared his lunch with the hungry dragon."),
    ("Tell a short story about a boy who finds a golden key.", story("key", hi=80), ["boy", "golden key"], "A boy found a golden key in the sand, and it opened a tiny door in the lighthouse."),
    ("Write a two-sentence story about a storm at sea.", story("storm", hi=60), ["two-sentence", "storm at sea"], "The storm tossed the little boat all night. In the morning, the sailors saw land."),
    ("Write a short story about a clock that stops time.", story("clock", hi=80), ["clock", "stops time"], "When Mia wound the old clock, the whole world froze, and only she could move."),
    ("Tell a one-sentence story about an owl who cannot sleep.", story("owl"), ["one-sentence", "owl", "cannot sleep"], "The owl who could not sleep counted stars until the sun came up."),
    ("Write a short story about a baker and a magic oven.", story("oven", hi=80), ["baker", "magic oven"], "The baker's magic oven baked bread that made everyone who ate it sing."),
    ("Write a one-sentence story about a train in the snow.", story("train"), ["one-sentence", "train", "snow"], "The last train crawled through the snow, its lights the only warmth in the valley."),
    ("Tell a short story about two friends building a treehouse.", story("treehouse", hi=80), ["two friends", "treehouse"], "Two friends spent the summer building a treehouse and slept in it on the last night of August."),
]

CODE_GENERATION = [
    ("Write a Python function add(a, b) that returns the sum of a and b.", code("add"), ["Python function", "add(a, b)", "sum"], "def add(a, b):\n    return a + b"),
    ("Write a Python function square(x) that returns x squared.", code("square"), ["Python function", "square(x)", "x squared"], "def square(x):\n    return x * x"),
    ("Write a Python function is_even(n) that returns True if n is even.", code("is_even"), ["Python function", "is_even(n)", "even"], "def is_even(n):\n    return n % 2 == 0"),
    ("Write a Python function greet(name) that returns \"Hello, \" followed by the name.", code("greet"), ["Python function", "greet(name)", "Hello, "], "def greet(name):\n    return \"Hello, \" + name"),
    ("Write a Python function maximum(a, b) that returns the larger of two numbers.", code("maximum"), ["Python function", "maximum(a, b)", "larger"], "def maximum(a, b):\n    return a if a > b else b"),
    ("Write a Python function double(x) that returns twice x.", code("double"), ["Python function", "double(x)", "twice"], "def double(x):\n    return 2 * x"),
    ("Write a Python function area(w, h) that returns the area of a rectangle.", code("area"), ["Python function", "area(w, h)", "rectangle"], "def area(w, h):\n    return w * h"),
    ("Write a Python function negate(x) that returns -x.", code("negate"), ["Python function", "negate(x)", "-x"], "def negate(x):\n    return -x"),
    ("Write a Python function first(items) that returns the first element of a list.", code("first"), ["Python function", "first(items)", "first element"], "def first(items):\n    return items[0]"),
    ("Write a Python function last(items) that returns the last element of a list.", code("last"), ["Python function", "last(items)", "last element"], "def last(items):\n    return items[-1]"),
    ("Write a Python function length(s) that returns the length of a string.", code("length"), ["Python function", "length(s)", "length of a string"], "def length(s):\n    return len(s)"),
    ("Write a Python function cube(x) that returns x cubed.", code("cube"), ["Python function", "cube(x)", "x cubed"], "def cube(x):\n    return x ** 3"),
    ("Write a Python function average(a, b) that returns the mean of two numbers.", code("average"), ["Python function", "average(a, b)", "mean"], "def average(a, b):\n    return (a + b) / 2"),
    ("Write a Python function is_positive(n) that returns True if n is greater than 0.", code("is_positive"), ["Python function", "is_positive(n)", "greater than 0"], "def is_positive(n):\n    return n > 0"),
    ("Write a Python function to_upper(s) that returns s in upper case.", code("to_upper"), ["Python function", "to_upper(s)", "upper case"], "def to_upper(s):\n    return s.upper()"),
    ("Write a Python function reverse(s) that returns the string s reversed.", code("reverse"), ["Python function", "reverse(s)", "reversed"], "def reverse(s):\n    return s[::-1]"),
    ("Write a Python function subtract(a, b) that returns a minus b.", code("subtract"), ["Python function", "subtract(a, b)", "a minus b"], "def subtract(a, b):\n    return a - b"),
    ("Write a Python function multiply(a, b) that returns the product of a and b.", code("multiply"), ["Python function", "multiply(a, b)", "product"], "def multiply(a, b):\n    return a * b"),
    ("Write a Python function half(x) that returns half of x.", code("half"), ["Python function", "half(x)", "half of x"], "def half(x):\n    return x / 2"),
    ("Write a Python function is_empty(items) that returns True if a list is empty.", code("is_empty"), ["Python function", "is_empty(items)", "empty"], "def is_empty(items):\n    return len(items) == 0"),
    ("Write a Python function c_to_f(c) that converts Celsius to Fahrenheit.", code("c_to_f"), ["Python function", "c_to_f(c)", "Celsius to Fahrenheit"], "def c_to_f(c):\n    return c * 9 / 5 + 32"),
    ("Write a Python function minimum(a, b) that returns the smaller of two numbers.", code("minimum"), ["Python function", "minimum(a, b)", "smaller"], "def minimum(a, b):\n    return a if a < b else b"),
    ("Write a Python function count_a(s) that counts the letter \"a\" in a string.", code("count_a"), ["Python function", "count_a(s)", "counts the letter"], "def count_a(s):\n    return s.count(\"a\")"),
    ("Write a Python function absolute(x) that returns the absolute value of x.", code("absolute"), ["Python function", "absolute(x)", "absolute value"], "def absolute(x):\n    return x if x >= 0 else -x"),
    ("Write a Python function say_hi() that returns the string \"hi\".", code("say_hi"), ["Python function", "say_hi()", "\"hi\""], "def say_hi():\n    return \"hi\""),
    ("Write a Python function sum_list(nums) that returns the sum of a list of numbers.", code("sum_list"), ["Python function", "sum_list(nums)", "sum of a list"], "def sum_list(nums):\n    return sum(nums)"),
    ("Write one line of Python that prints Hello.", all_of(code(), include("print")), ["one line of Python", "prints Hello"], "print(\"Hello\")"),
    ("Write a Python for loop that prints the numbers 0 to 4.", all_of(code(), include("for", "print")), ["Python for loop", "prints", "0 to 4"], "for i in range(5):\n    print(i)"),
]

CONSTRAINED_WRITING = [
    ("Write a sentence about the sea in exactly five words.", all_of(words(5, 5), include("sea")), ["sea", "exactly five words"], "The sea is calm tonight."),
    ("Write a poem title in all capital letters.", CAPS, ["poem title", "all capital letters"], "SONG OF THE NIGHT"),
    ("Describe the sun in exactly three words.", words(3, 3), ["sun", "exactly three words"], "Bright, warm, golden."),
    ("Write a sentence about rain without using the word \"wet\".", all_of(include("rain"), exclude("wet")), ["rain", "without", "\"wet\""], "The rain tapped softly on the roof."),
    ("Write a sentence that starts with \"Tomorrow\".", starts("Tomorrow"), ["starts with", "\"Tomorrow\""], "Tomorrow we will climb the hill behind the school."),
    ("Write a slogan for a bakery in fewer than ten words.", words(1, 9), ["slogan", "bakery", "fewer than ten words"], "Fresh bread, baked with love every morning."),
    ("Write a four-word sentence about winter.", all_of(words(4, 4), include("winter")), ["four-word", "winter"], "Winter nights are cold."),
    ("Write a sentence in which every word starts with \"s\".", rx(r"^\W*s\w*(?:\W+s\w*)*\W*$"), ["every word starts with", "\"s\""], "Sally sells shiny seashells slowly."),
    ("Give a one-word name for a pet goldfish.", words(1, 1), ["one-word", "name", "goldfish"], "Bubbles"),
    ("Write a short greeting in all capital letters.", CAPS, ["greeting", "all capital letters"], "HELLO THERE, FRIEND!"),
    ("Write a question about a forest that ends with a question mark.", all_of(rx(r"\?[\"'”’]?$"), include("forest")), ["question", "forest", "ends with a question mark"], "What lives in the deep forest?"),
    ("Write a six-word story about a journey.", words(6, 6), ["six-word", "journey"], "Left home, crossed oceans, found myself."),
    ("Write a sentence about music that includes the word \"piano\".", include("piano"), ["music", "includes the word", "\"piano\""], "She played a gentle song on the old piano."),
    ("Write a title for a mystery novel that starts with \"The\".", starts("The"), ["title", "mystery novel", "starts with \"The\""], "The Silent Key"),
    ("Write a sentence about spring that uses the word \"green\" twice.", rx(r"\bgreen\b[\s\S]*\bgreen\b"), ["spring", "\"green\" twice"], "Green leaves and green grass return in spring."),
    ("Write an acrostic poem for \"SUN\" with one word per line.", rx(r"^\W*s\w*\W+u\w*\W+n\w*"), ["acrostic", "\"SUN\"", "one word per line"], "Shining\nUpward\nNoon"),
    ("Write a school motto in exactly three words.", words(3, 3), ["school motto", "exactly three words"], "Learn, grow, lead."),
    ("Write a sentence about the moon in no more than eight words.", all_of(words(2, 8), include("moon")), ["moon", "no more than eight words"], "The moon glows softly over the sea."),
    ("Write a sentence about dogs without using the word \"dog\".", all_of(exclude("dog"), words(3)), ["dogs", "without", "\"dog\""], "Puppies love to chase balls in the park."),
    ("Invent a two-word name for a rock band.", words(2, 2), ["two-word", "rock band"], "Thunder Lizards"),
    ("Write a line of poetry that ends with the word \"night\".", rx(r"\bnight\W*$"), ["poetry", "ends with the word", "\"night\""], "The stars keep watch across the night."),
    ("Write a sentence about the ocean in all capital letters.", all_of(CAPS, include("ocean")), ["ocean", "all capital letters"], "THE OCEAN SINGS TO THE SHORE."),
    ("Write a question about stars that starts with \"Why\".", all_of(starts("Why"), rx(r"\?"), include("star")), ["question", "stars", "starts with \"Why\""], "Why do stars twinkle at night?"),
    ("Write a seven-word sentence about a bird.", all_of(words(7, 7), include("bird")), ["seven-word", "bird"], "A small bird sang on my window."),
    ("Give a one-word title for a poem about the ocean.", words(1, 1), ["one-word", "title", "ocean"], "Tides"),
    ("Write a sentence that uses the words \"apple\" and \"river\".", include("apple", "river"), ["\"apple\"", "\"river\""], "An apple floated down the river."),
    ("Write a sentence about cats that ends with an exclamation mark.", all_of(include("cat"), rx(r"![\"'”’]?$")), ["cats", "ends with an exclamation mark"], "Cats are the best nappers!"),
    ("Write a sentence about summer in fewer than six words.", all_of(words(2, 5), include("summer")), ["summer", "fewer than six words"], "Summer days feel long."),
]

# --------------------------------------------------------------------------- instruction following

TASK_COMPLETION = [
    ("Translate \"hello\" into Spanish.", acc("hola"), ["\"hello\"", "Spanish"], "Hola"),
    ("Translate \"thank you\" into French.", acc("merci"), ["\"thank you\"", "French"], "Merci"),
    ("Translate \"cat\" into Spanish.", acc("gato", "gata"), ["\"cat\"", "Spanish"], "Gato"),
    ("Translate \"water\" into German.", acc("Wasser"), ["\"water\"", "German"], "Wasser"),
    ("Translate \"good night\" into Spanish.", acc("buenas noches"), ["\"good night\"", "Spanish"], "Buenas noches"),
    ("Translate \"book\" into French.", acc("livre"), ["\"book\"", "French"], "Livre"),
    ("Translate \"apple\" into French.", acc("pomme"), ["\"apple\"", "French"], "Pomme"),
    ("Translate \"dog\" into Spanish.", acc("perro", "perra"), ["\"dog\"", "Spanish"], "Perro"),
    ("Translate \"yes\" into German.", acc("ja"), ["\"yes\"", "German"], "Ja"),
    ("Translate \"house\" into German.", acc("Haus"), ["\"house\"", "German"], "Haus"),
    ("Write the word \"garden\" backwards.", acc("nedrag"), ["\"garden\"", "backwards"], "nedrag"),
    ("Spell the word \"stop\" backwards.", acc("pots"), ["\"stop\"", "backwards"], "pots"),
    ("What is the plural of \"mouse\"?", acc("mice"), ["plural", "\"mouse\""], "Mice"),
    ("What is the plural of \"child\"?", acc("children"), ["plural", "\"child\""], "Children"),
    ("What is the past tense of \"go\"?", acc("went"), ["past tense", "\"go\""], "Went"),
    ("What is the past tense of \"eat\"?", acc("ate"), ["past tense", "\"eat\""], "Ate"),
    ("Give the opposite of \"hot\".", acc("cold"), ["opposite", "\"hot\""], "Cold"),
    ("Give the opposite of \"happy\".", acc("sad", "unhappy"), ["opposite", "\"happy\""], "Sad"),
    ("Give a synonym for \"big\".", acc("large", "huge", "giant", "enormous", "massive", "great"), ["synonym", "\"big\""], "Large"),
    ("Sort these numbers from smallest to largest: 9, 2, 7, 4.", rx(r"2\D+4\D+7\D+9"), ["Sort", "smallest to largest", "9, 2, 7, 4"], "2, 4, 7, 9"),
    ("Sort these words alphabetically: pear, apple, mango.", rx(r"apple\W+mango\W+pear"), ["Sort", "alphabetically", "pear, apple, mango"], "apple, mango, pear"),
    ("Correct the spelling of \"recieve\".", acc("receive"), ["Correct the spelling", "\"recieve\""], "receive"),
    ("Correct the spelling of \"definately\".", acc("definitely"), ["Correct the spelling", "\"definately\""], "definitely"),
    ("Extract the number from this sentence: \"The parcel weighs 14 kilograms.\"", num(14), ["Extract the number", "14"], "14"),
    ("How many words are in the sentence \"The quick brown fox jumps\"?", num(5), ["How many words", "The quick brown fox jumps"], "5"),
    ("Convert \"hello world\" to uppercase.", rx(r"HELLO WORLD", ignore_case=False), ["\"hello world\"", "uppercase"], "HELLO WORLD"),
    ("Convert 3 kilometers to meters.", num(3000), ["3 kilometers", "meters"], "3,000 meters"),
    ("What is the first letter of the word \"banana\"?", rx(r"(?<![a-z])b(?![a-z])"), ["first letter", "\"banana\""], "B"),
    ("Fill in the blank: The sun rises in the ___.", acc("east"), ["Fill in the blank", "sun rises"], "East"),
    ("What number comes next: 2, 4, 6, 8, ...?", acc("10", "ten"), ["comes next", "2, 4, 6, 8"], "10"),
    ("What comes next: Monday, Tuesday, Wednesday, ...?", acc("Thursday"), ["comes next", "Monday, Tuesday, Wednesday"], "Thursday"),
    ("Is the sentiment of \"I love this movie!\" negative or positive?", choice("positive", "negative"), ["sentiment", "I love this movie!"], "Positive"),
    ("Is the sentiment of \"This food is awful.\" positive or negative?", choice("negative", "positive"), ["sentiment", "This food is awful."], "Negative"),
    ("Is a carrot a fruit or a vegetable?", choice("vegetable", "fruit"), ["carrot", "fruit or a vegetable"], "A vegetable"),
    ("How many vowels are in the word \"banana\"?", num(3), ["How many vowels", "\"banana\""], "3"),
    ("Which word does not belong: apple, banana, carrot, grape?", choice("carrot", "apple", "banana", "grape"), ["does not belong", "apple, banana, carrot, grape"], "Carrot, because it is a vegetable."),
    ("Rewrite \"I am happy\" in the past tense.", acc("was happy"), ["\"I am happy\"", "past tense"], "I was happy."),
    ("Combine \"sun\" and \"flower\" into one word.", acc("sunflower"), ["\"sun\"", "\"flower\"", "one word"], "Sunflower"),
    ("Remove the first letter of \"plate\". What word is left?", acc("late"), ["Remove the first letter", "\"plate\""], "late"),
    ("How many letters are in the word \"elephant\"?", num(8), ["How many letters", "\"elephant\""], "8"),
    ("Write the number 7 as a word.", acc("seven"), ["number 7", "as a word"], "seven"),
    ("Complete the saying: \"Better late than ___.\"", acc("never"), ["Complete the saying", "Better late than"], "never"),
]

CONSTRAINT_ADHERENCE = [
    ("Answer in one word: what color is grass?", all_of(words(1, 1), acc("green")), ["one word", "color", "grass"], "Green."),
    ("Answer with only a number: how many legs does a dog have?", all_of(rx(r"^\W*\d+\W*$"), num(4)), ["only a number", "legs", "dog"], "4"),
    ("Reply in all capital letters: what is the capital of France?", all_of(CAPS, acc("Paris")), ["all capital letters", "capital of France"], "PARIS"),
    ("List three colors of the rainbow, separated by commas.", items(3), ["three", "colors of the rainbow", "separated by commas"], "Red, green, blue"),
    ("Give a JSON object with keys \"name\" and \"age\" for Ana, who is 30.", json_keys("name", "age"), ["JSON object", "\"name\"", "\"age\""], "{\"name\": \"Ana\", \"age\": 30}"),
    ("Answer yes or no: is the sky blue on a clear day?", YES, ["yes or no", "sky blue", "clear day"], "Yes"),
    ("Start your answer with \"Sure\": what is 2 plus 2?", all_of(starts("Sure"), acc("4", "four")), ["Start your answer with \"Sure\"", "2 plus 2"], "Sure, 2 plus 2 is 4."),
    ("Describe a strawberry without using the word \"red\".", all_of(exclude("red"), acc("fruit", "berry", "sweet", "juicy", "seeds", "strawberry")), ["strawberry", "without", "\"red\""], "A sweet, juicy fruit with tiny seeds on its skin."),
    ("In exactly three words, describe the ocean.", words(3, 3), ["exactly three words", "ocean"], "Vast, deep, blue."),
    ("Name two planets and nothing else.", items(2), ["two planets", "nothing else"], "Mars and Venus"),
    ("Answer in lowercase only: what animal says \"moo\"?", all_of(NO_CAPITALS, acc("cow", "cows")), ["lowercase only", "animal", "\"moo\""], "a cow"),
    ("Reply with a JSON object with the key \"capital\" for Japan.", all_of(json_keys("capital"), acc("Tokyo")), ["JSON object", "\"capital\"", "Japan"], "{\"capital\": \"Tokyo\"}"),
    ("Answer in fewer than five words: what do bees make?", all_of(words(1, 4), acc("honey")), ["fewer than five words", "bees make"], "Honey."),
    ("List four fruits, one per line.", items(4), ["four fruits", "one per line"], "Apple\nBanana\nCherry\nMango"),
    ("Answer with a single letter: what letter does \"apple\" start with?", rx(r"^\W*a\W*$"), ["single letter", "\"apple\"", "start with"], "A"),
    ("Start your reply with \"Yes\" or \"No\": can fish swim?", YES, ["Start your reply with \"Yes\" or \"No\"", "fish swim"], "Yes, fish can swim."),
    ("Say hello to a friend and end with an exclamation mark.", rx(r"![\"'”’)]?$"), ["hello", "end with an exclamation mark"], "Hi there, my friend!"),
    ("Use the word \"because\" in your answer: why do we sleep?", include("because"), ["\"because\"", "why do we sleep"], "We sleep because our bodies and brains need rest."),
    ("Describe a clock without using any digits.", all_of(rx(r"^\D*$"), acc("hands", "hand", "time", "tick", "ticks", "face", "hours")), ["clock", "without using any digits"], "A round face with two hands that point to the hours."),
    ("Answer in one word: what is frozen water called?", all_of(words(1, 1), acc("ice")), ["one word", "frozen water"], "Ice."),
    ("Give exactly two examples of mammals, separated by a comma.", items(2), ["exactly two", "mammals", "separated by a comma"], "Dog, whale"),
    ("Reply in all capital letters: name a large animal.", CAPS, ["all capital letters", "large animal"], "ELEPHANT"),
    ("Write the number twelve using digits only.", rx(r"^\W*12\W*$"), ["twelve", "digits only"], "12"),
    ("Answer \"true\" or \"false\": the Earth orbits the Sun.", rx(r"^\W*true\b"), ["\"true\" or \"false\"", "Earth orbits the Sun"], "True"),
    ("Answer \"true\" or \"false\": fire is cold.", rx(r"^\W*false\b"), ["\"true\" or \"false\"", "fire is cold"], "False"),
    ("Put your answer in double quotes: what is the opposite of \"up\"?", rx(r"[\"“]\s*down\s*[.!]?\s*[\"”]"), ["double quotes", "opposite", "\"up\""], "\"down\""),
    ("Give a JSON object with keys \"color\" and \"shape\" for a red ball.", json_keys("color", "shape"), ["JSON object", "\"color\"", "\"shape\""], "{\"color\": \"red\", \"shape\": \"sphere\"}"),
    ("Start with the word \"Dear\" and write a one-line note to a teacher.", starts("Dear"), ["Start with the word \"Dear\"", "note to a teacher"], "Dear Ms. Lee, thank you for your help this year."),
    ("Give a numbered list of three animals.", all_of(items(3), rx(r"(?:^|\n)\s*1[.)]")), ["numbered list", "three animals"], "1. Dog\n2. Cat\n3. Horse"),
    ("Answer in fewer than ten words: why is the sky blue?", all_of(words(1, 9), acc("scatter", "scatters", "scattering", "scattered", "light", "sunlight", "air", "atmosphere")), ["fewer than ten words", "sky blue"], "Air scatters blue sunlight the most."),
    ("Name three vegetables, separated by commas, with no other text.", items(3), ["three vegetables", "separated by commas", "no other text"], "Carrot, pea, onion"),
    ("Say \"OK\" and nothing else.", rx(r"^\W*ok\W*$"), ["\"OK\"", "nothing else"], "OK"),
    ("Repeat the word \"blue\" three times.", rx(r"blue\W+blue\W+blue"), ["Repeat", "\"blue\"", "three times"], "blue blue blue"),
    ("Answer with one word: what is the opposite of \"dark\"?", all_of(words(1, 1), acc("light", "bright")), ["one word", "opposite", "\"dark\""], "Light"),
    ("Reply only with the name of the capital of Italy.", all_of(words(1, 2), acc("Rome")), ["only", "capital of Italy"], "Rome"),
    ("Write \"hello\" in all capital letters.", rx(r"HELLO", ignore_case=False), ["\"hello\"", "all capital letters"], "HELLO"),
    ("Answer in one sentence without commas: what do cows eat?", all_of(rx(r"^[^,]*$"), acc("grass", "hay", "plants")), ["without commas", "cows eat"], "Cows mostly eat grass and hay."),
    ("Return a JSON object that maps \"a\" to 1 and \"b\" to 2.", json_keys("a", "b"), ["JSON object", "\"a\" to 1", "\"b\" to 2"], "{\"a\": 1, \"b\": 2}"),
    ("Name one primary color, in one word.", all_of(words(1, 1), acc("red", "blue", "yellow", "green")), ["one primary color", "one word"], "Red"),
    ("Reply with a whole number from 1 to 10 and nothing else.", rx(r"^\W*(?:[1-9]|10)\W*$"), ["whole number", "1 to 10", "nothing else"], "7"),
    ("Start your answer with \"The answer is\": what is 5 times 2?", all_of(starts("The answer is"), acc("10", "ten")), ["Start your answer with \"The answer is\"", "5 times 2"], "The answer is 10."),
    ("Using only lowercase letters, name the capital of Germany.", all_of(NO_CAPITALS, acc("berlin")), ["only lowercase letters", "capital of Germany"], "berlin"),
]

# --------------------------------------------------------------------------- ambiguity and context


def sense(sentence: str, word: str, *meanings: str, cue: str, hint: str) -> tuple:
    """A word-sense case: what does `word` mean in `sentence`? `cue` is the context word that decides."""
    return (f"In \"{sentence}\", what does \"{word}\" mean?", acc(*meanings), [word, cue], hint)


PRONOUN_RESOLUTION = [
    ("The trophy did not fit in the suitcase because it was too big. What was too big?", choice("trophy", "suitcase", says=("too big",)), ["trophy", "did not fit", "too big"], "The trophy"),
    ("The trophy did not fit in the suitcase because it was too small. What was too small?", choice("suitcase", "trophy", says=("too small",)), ["suitcase", "did not fit", "too small"], "The suitcase"),
    ("The council refused the protesters a permit because they feared violence. Who feared violence?", choice(("council", "councillors", "councilors"), "protesters", says=("feared",)), ["council", "refused", "feared violence"], "The council"),
    ("The council refused the protesters a permit because they promoted violence. Who promoted violence?", choice(("protesters", "protester", "protestors"), "council", says=("promoted",)), ["protesters", "refused", "promoted violence"], "The protesters"),
    ("Anna thanked Maria because she had helped her move house. Who helped?", choice("Maria", "Anna", says=("helped",)), ["Anna thanked Maria", "helped"], "Maria"),
    ("The dog chased the cat until it climbed a tree. What climbed the tree?", choice("cat", "dog", says=("climbed",)), ["dog chased the cat", "climbed a tree"], "The cat"),
    ("Tom gave Sam his old bike because he had bought a new one. Who bought a new bike?", choice("Tom", "Sam", says=("bought",)), ["Tom gave Sam his old bike", "bought a new one"], "Tom"),
    ("Tom gave Sam his old bike because he needed one for school. Who needed a bike?", choice("Sam", "Tom", says=("needed",)), ["Tom gave Sam his old bike", "needed one"], "Sam"),
    ("The man could not lift his son because he was so weak. Who was weak?", choice(("man", "father", "dad"), "son", says=("weak",)), ["man could not lift his son", "weak"], "The man"),
    ("The man could not lift his son because he was so heavy. Who was heavy?", choice(("son", "boy"), "man", "father", says=("heavy",)), ["man could not lift his son", "heavy"], "The son"),
    ("The rock hit the window and it shattered. What shattered?", choice("window", "rock", says=("shattered",)), ["rock hit the window", "shattered"], "The window"),
    ("The bottle fell off the table because it was too close to the edge. What was close to the edge?", choice("bottle", "table", says=("close to the edge", "close")), ["bottle fell off the table", "close to the edge"], "The bottle"),
    ("Joan thanked Susan for all the help she had given. Who had given help?", choice("Susan", "Joan", says=("given",)), ["Joan thanked Susan", "had given"], "Susan"),
    ("Joan thanked Susan for all the help she had received. Who had received help?", choice("Joan", "Susan", says=("received",)), ["Joan thanked Susan", "had received"], "Joan"),
    ("Paul tried to call George, but he was not available. Who was not available?", choice("George", "Paul", says=("not available", "available")), ["Paul tried to call George", "not available"], "George"),
    ("The fish ate the worm because it was hungry. Who was hungry?", choice("fish", "worm", says=("hungry",)), ["fish ate the worm", "hungry"], "The fish"),
    ("The fish ate the worm because it was tasty. What was tasty?", choice("worm", "fish", says=("tasty",)), ["fish ate the worm", "tasty"], "The worm"),
    ("The statue fell off the shelf because it was not level. What was not level?", choice("shelf", "statue", says=("not level", "level")), ["statue fell off the shelf", "not level"], "The shelf"),
    ("The teacher praised the student because she had worked so hard. Who worked hard?", choice("student", "teacher", says=("worked",)), ["teacher praised the student", "worked so hard"], "The student"),
    ("The truck sped past the bus because it was going so fast. What was going fast?", choice("truck", "bus", says=("fast",)), ["truck sped past the bus", "so fast"], "The truck"),
    ("The truck sped past the bus because it was going so slowly. What was going slowly?", choice("bus", "truck", says=("slowly", "slow")), ["truck sped past the bus", "so slowly"], "The bus"),
    ("The lawyer asked the witness a question, but he was reluctant to answer it. Who was reluctant?", choice("witness", "lawyer", says=("reluctant",)), ["lawyer asked the witness", "reluctant to answer"], "The witness"),
    ("The lawyer asked the witness a question, but he was reluctant to repeat it. Who was reluctant?", choice("lawyer", "witness", says=("reluctant",)), ["lawyer asked the witness", "reluctant to repeat"], "The lawyer"),
    ("I poured water from the bottle into the cup until it was full. What was full?", choice("cup", "bottle", says=("full",)), ["from the bottle into the cup", "full"], "The cup"),
    ("I poured water from the bottle into the cup until it was empty. What was empty?", choice("bottle", "cup", says=("empty",)), ["from the bottle into the cup", "empty"], "The bottle"),
    ("The firefighters arrived after the police because they were coming from far away. Who came from far away?", choice(("firefighters", "firefighter", "firemen"), "police", says=("far away", "far")), ["firefighters arrived after the police", "far away"], "The firefighters"),
    ("The sack of potatoes was put under the bag of flour, so it was at the bottom. What was at the bottom?", choice(("potatoes", "sack"), "flour", "bag", says=("bottom",)), ["sack of potatoes was put under the bag of flour", "bottom"], "The sack of potatoes"),
]

WORD_SENSE = [
    sense("She sat on the bank and watched the river flow.", "bank", "riverbank", "riverside", "shore", "edge", "side", "land", cue="river", hint="The land along the side of a river"),
    sense("He put his salary in the bank and got a receipt.", "bank", "money", "financial", "institution", "savings", cue="salary", hint="A financial institution that keeps money"),
    sense("The bat flew out of the cave at night.", "bat", "animal", "mammal", "creature", cue="flew out of the cave", hint="A flying animal (a mammal)"),
    sense("He swung the bat and hit the ball.", "bat", "club", "stick", "wooden", "equipment", "baseball", "cricket", cue="hit the ball", hint="A wooden club used to hit a ball"),
    sense("The dog's bark woke the baby.", "bark", "sound", "noise", "woof", "call", "cry", "yelp", cue="dog's", hint="The loud sound a dog makes"),
    sense("The bark of the old oak was rough.", "bark", "outer", "skin", "covering", "layer", "tree", "trunk", cue="oak", hint="The outer covering of a tree trunk"),
    sense("The flowers bloom every spring.", "spring", "season", cue="flowers bloom", hint="The season after winter"),
    sense("They drank fresh water from a mountain spring.", "spring", "source", "stream", "natural", "underground", "fountain", cue="drank fresh water", hint="A natural source of water from the ground"),
    sense("The old mattress had a broken spring.", "spring", "coil", "metal", cue="mattress", hint="A metal coil that bounces back"),
    sense("A crane stood on one leg in the marsh.", "crane", "bird", cue="stood on one leg in the marsh", hint="A tall wading bird"),
    sense("The crane lifted steel beams onto the building.", "crane", "machine", "construction", "lifting", "equipment", "vehicle", cue="lifted steel beams", hint="A machine for lifting heavy things"),
    sense("Click the left button of your mouse to open the file.", "mouse", "computer", "device", "pointer", "pointing", cue="Click the left button", hint="A computer device you move to point and click"),
    sense("The cat chased a mouse into the barn.", "mouse", "animal", "rodent", "mammal", "creature", cue="cat chased", hint="A small rodent"),
    sense("The players ran onto the football pitch.", "pitch", "field", "ground", cue="football", hint="The field where the game is played"),
    sense("The singer hit a very high pitch.", "pitch", "note", "tone", "sound", "frequency", cue="singer", hint="How high or low a sound is"),
    sense("She struck a match to light the candle.", "match", "stick", "fire", "flame", cue="light the candle", hint="A small stick that makes a flame"),
    sense("Our team won the tennis match.", "match", "game", "contest", "competition", cue="won", hint="A game or contest"),
    sense("She ate a sweet date from the palm tree.", "date", "fruit", cue="palm tree", hint="A sweet fruit of the date palm"),
    sense("Write today's date at the top of the page.", "date", "day", "calendar", "month", cue="today's", hint="The day, month and year"),
    sense("A seal swam past the fishing boat.", "seal", "animal", "mammal", "creature", cue="swam", hint="A sea mammal"),
    sense("She is a huge fan of that band.", "fan", "supporter", "supports", "admirer", "admires", "enthusiast", "follower", "likes", "loves", cue="that band", hint="A person who admires or supports someone"),
    sense("Turn on the fan, it is hot in here.", "fan", "device", "machine", "appliance", "air", "blades", "cool", cue="hot in here", hint="A device that blows air to cool you"),
    sense("A big wave crashed onto the beach.", "wave", "water", "sea", "ocean", "surf", "swell", cue="beach", hint="A moving ridge of sea water"),
    sense("She gave a friendly wave to her neighbour.", "wave", "hand", "gesture", "greeting", "hello", cue="friendly", hint="A greeting gesture with the hand"),
    sense("He gave her a gold ring with a diamond.", "ring", "jewelry", "jewellery", "band", "finger", cue="diamond", hint="A piece of jewellery worn on a finger"),
    sense("I heard the phone ring twice.", "ring", "sound", "call", "noise", "buzz", "tone", cue="phone", hint="The sound a phone makes when called"),
    sense("The chef used a sharp knife to cut the steak.", "sharp", "edge", "cuts", "cutting", "blade", "keen", "fine", cue="knife", hint="Having a fine edge that cuts easily"),
]

CONTEXT_LOOKUP = [
    ("Zorvia's capital is Pellan. What is the capital of Zorvia?", acc("Pellan"), ["Zorvia's capital is Pellan"], "Pellan"),
    ("Mia has a red bike and a blue kite. What color is Mia's kite?", choice("blue", "red"), ["blue kite", "Mia's kite"], "Blue"),
    ("The meeting was moved from Tuesday to Thursday. On which day is the meeting now?", choice("Thursday", "Tuesday"), ["moved from Tuesday to Thursday", "now"], "Thursday"),
    ("In this story, the sky is green. What color is the sky in the story?", acc("green"), ["In this story", "sky is green"], "Green"),
    ("Raj lives in Oslo and works in Bergen. Where does Raj work?", choice("Bergen", "Oslo"), ["works in Bergen"], "Bergen"),
    ("The password is \"maple42\". What is the password?", acc("maple42"), ["maple42"], "maple42"),
    ("Lena's cat is named Pepper and her dog is named Max. What is the dog's name?", choice("Max", "Pepper"), ["dog is named Max", "dog's name"], "Max"),
    ("The red door leads to the garden and the blue door leads to the cellar. Where does the blue door lead?", choice("cellar", "garden"), ["blue door leads to the cellar"], "The cellar"),
    ("In the game, a green gem is worth 5 points and a gold gem is worth 9. How many points is a gold gem worth?", num(9), ["gold gem is worth 9"], "9"),
    ("Ben was born in 1990 in Lyon. Where was Ben born?", acc("Lyon"), ["born in 1990 in Lyon"], "Lyon"),
    ("Planet Kesh has three moons: Ari, Bel and Cor. How many moons does Kesh have?", num(3), ["three moons"], "3"),
    ("Ana's favourite fruit is mango and Leo's is kiwi. What is Leo's favourite fruit?", choice(("kiwi", "kiwis"), "mango"), ["Leo's is kiwi"], "Kiwi"),
    ("The box on the left holds coins and the box on the right holds keys. What does the right box hold?", choice(("keys", "key"), "coins"), ["box on the right holds keys"], "Keys"),
    ("Chef Rosa cooks only on Sundays. On which day does Rosa cook?", acc("Sunday", "Sundays"), ["cooks only on Sundays"], "Sunday"),
    ("In this world, water is purple. What color is water here?", acc("purple"), ["In this world", "water is purple"], "Purple"),
    ("The treasure is buried under the oak tree, not the pine. Where is the treasure?", choice("oak", "pine"), ["buried under the oak tree", "not the pine"], "Under the oak tree"),
    ("Tom's phone number ends in 4417. What are the last four digits of Tom's number?", acc("4417"), ["ends in 4417"], "4417"),
    ("The train to Dover leaves from platform 6. Which platform does the Dover train leave from?", num(6), ["train to Dover leaves from platform 6"], "Platform 6"),
    ("Sara is a nurse and her brother is a pilot. What is her brother's job?", choice("pilot", "nurse"), ["her brother is a pilot"], "A pilot"),
    ("The spell \"lumora\" makes light and the spell \"vexis\" makes fire. Which spell makes fire?", choice("vexis", "lumora"), ["\"vexis\" makes fire"], "vexis"),
    ("In the village of Brill, everyone wears hats on Fridays. On which day do people in Brill wear hats?", acc("Friday", "Fridays"), ["wears hats on Fridays"], "Friday"),
    ("The meeting moved from Room 12 to Room 30. Which room is the meeting in now?", choice("30", "12"), ["moved from Room 12 to Room 30", "now"], "Room 30"),
    ("The robot Zed runs on solar power. What powers Zed?", acc("solar", "sun", "sunlight"), ["Zed runs on solar power"], "Solar power"),
    ("Kai has 3 sisters and 2 brothers. How many brothers does Kai have?", num(2), ["2 brothers"], "2"),
    ("The blue team scored 4 goals and the red team scored 7. Which team won?", choice("red", "blue"), ["blue team scored 4", "red team scored 7", "won"], "The red team"),
    ("In the fable, the wise animal is the tortoise. Which animal is wise in the fable?", acc("tortoise"), ["the wise animal is the tortoise"], "The tortoise"),
    ("The library moved from Elm Street to Oak Street. On which street is the library now?", choice("Oak", "Elm"), ["moved from Elm Street to Oak Street", "now"], "Oak Street"),
    ("Nila is allergic to nuts, so she never eats them. Would Nila eat a nut cake?", NO, ["allergic to nuts", "never eats them"], "No, she is allergic to nuts."),
]

# --------------------------------------------------------------------------- hallucination bait

FALSE_ATTRIBUTION = [
    ("Why did Charles Dickens write Pride and Prejudice?", premise("Dickens", "Austen"), ["Charles Dickens", "Pride and Prejudice"], "He didn't; Jane Austen wrote Pride and Prejudice."),
    ("What inspired Leo Tolstoy to write Hamlet?", premise("Tolstoy", "Shakespeare"), ["Leo Tolstoy", "Hamlet"], "Tolstoy did not write Hamlet; Shakespeare did."),
    ("Why did Isaac Newton invent the telephone?", premise("Newton", "Bell"), ["Isaac Newton", "telephone"], "He didn't; Alexander Graham Bell is credited with inventing the telephone."),
    ("How did Albert Einstein discover penicillin?", premise("Einstein", "Fleming"), ["Albert Einstein", "penicillin"], "He didn't; Alexander Fleming discovered penicillin."),
    ("Why did Leonardo da Vinci paint The Starry Night?", premise(("Leonardo", "da Vinci"), "van Gogh", "Gogh"), ["Leonardo da Vinci", "The Starry Night"], "He didn't; Vincent van Gogh painted The Starry Night."),
    ("Why did Beethoven compose The Magic Flute?", premise("Beethoven", "Mozart"), ["Beethoven", "The Magic Flute"], "He didn't; Mozart composed The Magic Flute."),
    ("When did Thomas Edison write Romeo and Juliet?", premise("Edison", "Shakespeare"), ["Thomas Edison", "Romeo and Juliet"], "He never did; Shakespeare wrote Romeo and Juliet."),
    ("Why did Shakespeare write The Odyssey?", premise("Shakespeare", "Homer"), ["Shakespeare", "The Odyssey"], "He didn't; The Odyssey is attributed to Homer."),
    ("How did Marie Curie discover the law of gravity?", premise("Curie", "Newton"), ["Marie Curie", "law of gravity"], "She didn't; Isaac Newton formulated the law of gravity."),
    ("Why did Pablo Picasso paint the Mona Lisa?", premise("Picasso", "Leonardo", "da Vinci"), ["Pablo Picasso", "Mona Lisa"], "He didn't; Leonardo da Vinci painted the Mona Lisa."),
    ("Why did George Orwell write the Harry Potter books?", premise("Orwell", "Rowling"), ["George Orwell", "Harry Potter"], "He didn't; J.K. Rowling wrote them."),
    ("What made Jane Austen write War and Peace?", premise("Austen", "Tolstoy"), ["Jane Austen", "War and Peace"], "She didn't; Leo Tolstoy wrote War and Peace."),
    ("How did Galileo come up with the theory of evolution by natural selection?", premise("Galileo", "Darwin", "Wallace"), ["Galileo", "theory of evolution by natural selection"], "He didn't; Charles Darwin (and Alfred Russel Wallace) did."),
    ("Why did Neil Armstrong invent the airplane?", premise("Armstrong", "Wright"), ["Neil Armstrong", "airplane"], "He didn't; the Wright brothers built the first successful airplane."),
    ("How did Napoleon reach America in 1492?", premise("Napoleon", "Columbus"), ["Napoleon", "1492"], "He didn't; it was Christopher Columbus in 1492."),
    ("Why did Mozart paint the ceiling of the Sistine Chapel?", premise("Mozart", "Michelangelo"), ["Mozart", "Sistine Chapel"], "He didn't; Michelangelo painted it."),
    ("Why did Agatha Christie create Sherlock Holmes?", premise(("Christie", "Agatha"), "Doyle"), ["Agatha Christie", "Sherlock Holmes"], "She didn't; Arthur Conan Doyle created Sherlock Holmes."),
    ("Why did Homer write Don Quixote?", premise("Homer", "Cervantes"), ["Homer", "Don Quixote"], "He didn't; Miguel de Cervantes wrote Don Quixote."),
    ("How did Charles Darwin invent the printing press?", premise("Darwin", "Gutenberg"), ["Charles Darwin", "printing press"], "He didn't; Johannes Gutenberg invented the printing press in Europe."),
    ("Why did J.R.R. Tolkien write Frankenstein?", premise("Tolkien", "Shelley"), ["J.R.R. Tolkien", "Frankenstein"], "He didn't; Mary Shelley wrote Frankenstein."),
    ("Why did Vincent van Gogh compose the Moonlight Sonata?", premise(("van Gogh", "Gogh", "Vincent"), "Beethoven"), ["Vincent van Gogh", "Moonlight Sonata"], "He didn't; Beethoven composed the Moonlight Sonata."),
    ("Why was Christopher Columbus the first to climb Mount Everest?", premise("Columbus", "Hillary", "Tenzing", "Norgay"), ["Christopher Columbus", "first to climb Mount Everest"], "He wasn't; Edmund Hillary and Tenzing Norgay were first."),
    ("Why did Abraham Lincoln write the Declaration of Independence?", premise("Lincoln", "Jefferson"), ["Abraham Lincoln", "Declaration of Independence"], "He didn't; Thomas Jefferson was its main author."),
    ("How did Shakespeare discover the planet Neptune?", premise("Shakespeare", "Le Verrier", "Galle"), ["Shakespeare", "discover the planet Neptune"], "He didn't; Neptune was found in 1846 by Galle, using Le Verrier's prediction."),
    ("Why did Edgar Allan Poe write Moby-Dick?", premise("Poe", "Melville"), ["Edgar Allan Poe", "Moby-Dick"], "He didn't; Herman Melville wrote Moby-Dick."),
    ("Why did Mark Twain write The Great Gatsby?", premise("Twain", "Fitzgerald"), ["Mark Twain", "The Great Gatsby"], "He didn't; F. Scott Fitzgerald wrote The Great Gatsby."),
    ("Why did Ernest Hemingway write Dracula?", premise("Hemingway", "Stoker"), ["Ernest Hemingway", "Dracula"], "He didn't; Bram Stoker wrote Dracula."),
    ("What did Yuri Gagarin say when he stepped onto the Moon?", premise("Gagarin", "Armstrong"), ["Yuri Gagarin", "stepped onto the Moon"], "Nothing; Gagarin never walked on the Moon. Neil Armstrong was first."),
]

NONEXISTENT_ENTITY = [
    ("Which astronaut walked on Mars in 1975?", premise("Mars"), ["walked on Mars", "1975"], "No one; no astronaut walked on Mars in 1975."),
    ("What is the name of the tenth planet in our Solar System?", premise(("tenth planet", "tenth", "10th planet"), "eight planets", "8 planets"), ["tenth planet", "Solar System"], "There is no tenth planet; the Solar System has eight planets."),
    ("Who was the King of the United States in 1900?", premise("king", "president", "McKinley"), ["King", "United States", "1900"], "There was no king; William McKinley was President."),
    ("In what year did Albert Einstein win his second Nobel Prize?", premise("second", "only one", "one Nobel"), ["Albert Einstein", "second Nobel Prize"], "He never won a second one; he won only one Nobel Prize."),
    ("What is the chemical symbol for the element dragonium?", premise("dragonium"), ["element dragonium"], "There is no element called dragonium."),
    ("Where do wild unicorns live today?", premise("unicorn"), ["wild unicorns", "today"], "Nowhere; unicorns are mythical and do not exist."),
    ("What is the title of the novel Shakespeare wrote in 1950?", premise(("1950", "novel"), "1616"), ["novel", "Shakespeare", "1950"], "There is none; Shakespeare died in 1616."),
    ("Who was the President of the Roman Empire?", premise("president", "emperor", "emperors"), ["President", "Roman Empire"], "There was no president; it was ruled by emperors."),
    ("What is the population of the largest city on the Moon?", premise("city"), ["largest city", "Moon"], "There are no cities on the Moon."),
    ("What is the name of the largest moon of Venus?", premise("moon", "no moons"), ["largest moon", "Venus"], "Venus has no moons."),
    ("What is the atomic number of kryptonite?", premise("kryptonite", "fictional"), ["atomic number", "kryptonite"], "Kryptonite is fictional, so it has no atomic number."),
    ("In what year did Leonardo da Vinci fly his airplane over the Alps?", premise(("flew", "fly", "flown")), ["Leonardo da Vinci", "fly his airplane"], "He never did; he only sketched flying machines."),
    ("How many Oscars did William Shakespeare win?", premise(("won", "win"), "none", "zero", "0"), ["Oscars", "William Shakespeare"], "None; the Oscars began centuries after his death."),
    ("Who was the pharaoh of Egypt in 1990?", premise("pharaoh", "president", "Mubarak"), ["pharaoh", "1990"], "There was no pharaoh; Hosni Mubarak was President."),
    ("What is the capital city of the Sahara Desert?", premise("capital"), ["capital city", "Sahara Desert"], "The Sahara is a desert, not a country, so it has no capital."),
    ("Who built the first time machine in 1890?", premise("time machine"), ["first time machine", "1890"], "No one; time machines do not exist."),
    ("In which battle did Napoleon use telephones to command his army?", premise(("use telephone", "used telephone", "use the telephone", "used the telephone", "use a telephone", "used a telephone")), ["Napoleon", "telephones"], "None; the telephone was invented after Napoleon died."),
    ("What is the title of the eighth book in The Lord of the Rings trilogy?", premise(("eighth", "8th")), ["eighth book", "trilogy"], "There is no eighth book; a trilogy has three parts."),
    ("What did Julius Caesar post on social media?", premise("social media"), ["Julius Caesar", "social media"], "Nothing; social media did not exist in his time."),
    ("What is the name of the Sun's moon?", premise("moon"), ["Sun's moon"], "The Sun has no moon; moons orbit planets."),
    ("How tall is the Great Wall of Australia?", premise("Australia"), ["Great Wall of Australia"], "There is no Great Wall of Australia."),
    ("Which Roman emperor owned a smartphone?", premise(("smartphone", "phone")), ["Roman emperor", "smartphone"], "None; smartphones did not exist in Roman times."),
    ("What is the name of the ocean in the middle of the Sahara?", premise(("ocean", "sea")), ["ocean", "Sahara"], "There is no ocean in the Sahara; it is a desert."),
    ("Which ancient Egyptian pharaoh flew in an airplane?", premise(("flew", "fly", "flown")), ["ancient Egyptian pharaoh", "airplane"], "None; airplanes were invented thousands of years later."),
    ("What is the capital of the country of Antarctica?", premise(("country", "capital")), ["capital", "country of Antarctica"], "Antarctica is not a country, so it has no capital."),
    ("Which element has the chemical symbol Zz?", premise("Zz"), ["chemical symbol Zz"], "No element has the symbol Zz."),
    ("Which songs did Mozart record on CD?", premise(("CD", "record", "recorded")), ["Mozart", "record on CD"], "None; Mozart died long before sound recording existed."),
]

FALSE_FACT = [
    ("Why is the Sun a planet?", premise("planet", "star"), ["Sun", "planet"], "It isn't; the Sun is a star."),
    ("Why do spiders have six legs?", premise(("six", "6"), "eight", "8"), ["spiders", "six legs"], "They don't; spiders have eight legs."),
    ("Why is the Moon bigger than the Earth?", premise(("bigger", "larger"), "smaller"), ["Moon", "bigger than the Earth"], "It isn't; the Moon is smaller than the Earth."),
    ("Why is Sydney the capital of Australia?", premise("Sydney", "Canberra"), ["Sydney", "capital of Australia"], "It isn't; the capital is Canberra."),
    ("Why does water boil at 50 degrees Celsius at sea level?", premise("50", "100"), ["boil at 50 degrees Celsius", "sea level"], "It doesn't; water boils at 100 degrees Celsius at sea level."),
    ("Why is gold lighter than aluminium?", premise("lighter", "heavier", "denser"), ["gold", "lighter than aluminium"], "It isn't; gold is much denser than aluminium."),
    ("Why do penguins live at the North Pole?", premise(("North Pole", "north", "Arctic"), "South Pole", "Antarctica", "southern"), ["penguins", "North Pole"], "They don't; almost all wild penguins live in the southern half of the world, not at the North Pole."),
    ("Why is Mars the largest planet?", premise("Mars", "Jupiter"), ["Mars", "largest planet"], "It isn't; Jupiter is the largest planet."),
    ("Why did World War II end in 1950?", premise("1950", "1945"), ["World War II", "1950"], "It didn't; World War II ended in 1945."),
    ("Why are whales fish?", premise("fish", "mammal", "mammals"), ["whales", "fish"], "They aren't; whales are mammals."),
    ("Why is Toronto the capital of Canada?", premise("Toronto", "Ottawa"), ["Toronto", "capital of Canada"], "It isn't; Ottawa is the capital of Canada."),
    ("Why do humans have three lungs?", premise(("three", "3"), "two", "2"), ["humans", "three lungs"], "They don't; humans have two lungs."),
    ("Why is the Pacific the smallest ocean?", premise("smallest", "largest", "biggest"), ["Pacific", "smallest ocean"], "It isn't; the Pacific is the largest ocean."),
    ("Why is Mount Everest in Africa?", premise("Africa", "Asia", "Himalaya", "Himalayas", "Nepal"), ["Mount Everest", "Africa"], "It isn't; Mount Everest is in Asia, in the Himalayas."),
    ("Why do bats lay eggs?", premise("egg", "mammal", "mammals", "live young", "give birth"), ["bats", "lay eggs"], "They don't; bats are mammals that give birth to live young."),
    ("Why does the Sun orbit the Earth?", premise(("orbit the Earth", "orbits the Earth", "around the Earth"), "orbits the Sun", "around the Sun"), ["Sun orbit the Earth"], "It doesn't; the Earth orbits the Sun."),
    ("Why is lead a gas at room temperature?", premise("gas", "solid", "metal"), ["lead", "gas at room temperature"], "It isn't; lead is a solid metal at room temperature."),
    ("Why does a triangle have four sides?", premise(("four", "4"), "three", "3"), ["triangle", "four sides"], "It doesn't; a triangle has three sides."),
    ("Why is Paris the capital of Italy?", premise("Paris", "Rome"), ["Paris", "capital of Italy"], "It isn't; Rome is the capital of Italy."),
    ("Why did the Titanic sink in 1920?", premise("1920", "1912"), ["Titanic", "1920"], "It didn't; the Titanic sank in 1912."),
    ("Why is the chemical symbol for iron Ir?", premise("Ir", "Fe", "iridium"), ["chemical symbol for iron", "Ir"], "It isn't; iron's symbol is Fe, not Ir."),
    ("Why is the Amazon River in Europe?", premise("Europe", "South America", "Brazil"), ["Amazon River", "Europe"], "It isn't; the Amazon is in South America."),
    ("Why is the Earth flat?", premise("flat", "round", "sphere", "spherical", "globe"), ["Earth", "flat"], "It isn't; the Earth is round, close to a sphere."),
    ("Why does ice sink in water?", premise("sink", "float", "floats"), ["ice", "sink in water"], "It doesn't; ice floats on water."),
    ("Why is Shakespeare's Hamlet set in Spain?", premise("Spain", "Denmark"), ["Hamlet", "Spain"], "It isn't; Hamlet is set in Denmark."),
    ("Why is 7 an even number?", premise("even", "odd"), ["7", "even number"], "It isn't; 7 is an odd number."),
    ("Why do plants grow best in total darkness?", premise(("darkness", "dark"), "light", "sunlight"), ["plants", "total darkness"], "They don't; plants need light to make food."),
]

# --------------------------------------------------------------------------- arithmetic (generated)

ARITHMETIC_SOURCE = f"generated: data/build_cases.py arithmetic templates, random.Random({SEED})"


def generate_arithmetic(n: int = 28) -> list[tuple]:
    """n arithmetic questions, a quarter each of +, -, x and exact division; deterministic for SEED.

    Each template is (prompt, the operator word marked as evidence).
    """
    rng = random.Random(SEED)
    templates = {
        "add": [("What is {a} plus {b}?", "plus"), ("Add {a} and {b}.", "Add")],
        "sub": [("What is {a} minus {b}?", "minus"), ("Subtract {b} from {a}.", "Subtract")],
        "mul": [("What is {a} times {b}?", "times"), ("Multiply {a} by {b}.", "Multiply")],
        "div": [("What is {a} divided by {b}?", "divided by")],
    }
    rows, seen = [], set()
    while len(rows) < n:
        op = ["add", "sub", "mul", "div"][len(rows) % 4]
        if op == "add":
            a, b = rng.randint(12, 1999), rng.randint(12, 999)
            result = a + b
        elif op == "sub":
            b = rng.randint(11, 499)
            a = b + rng.randint(5, 700)
            result = a - b
        elif op == "mul":
            a, b = rng.randint(3, 19), rng.randint(3, 25)
            result = a * b
        else:
            b, result = rng.randint(2, 12), rng.randint(3, 30)
            a = b * result
        template, word = rng.choice(templates[op])
        prompt = template.format(a=a, b=b)
        if a == b or prompt in seen:
            continue
        seen.add(prompt)
        rows.append((prompt, num(result), [str(a), word, str(b)], str(result)))
    return rows


# --------------------------------------------------------------------------- assembly

# (category, subcategory, id prefix, rows); ids are prefix-001, prefix-002, ... in row order.
SECTIONS = [
    ("factual_recall", "simple_facts", "fact-simple", SIMPLE_FACTS),
    ("factual_recall", "multi_hop", "fact-multihop", MULTI_HOP),
    ("factual_recall", "temporal", "fact-temporal", TEMPORAL),
    ("reasoning", "arithmetic", "reason-arith", None),  # generated
    ("reasoning", "deduction", "reason-deduct", DEDUCTION),
    ("reasoning", "chain_of_thought", "reason-cot", None),  # built from CHAIN_OF_THOUGHT
    ("creative_generation", "storytelling", "create-story", STORYTELLING),
    ("creative_generation", "code_generation", "create-code", CODE_GENERATION),
    ("creative_generation", "constrained_writing", "create-constrained", CONSTRAINED_WRITING),
    ("instruction_following", "task_completion", "instruct-task", TASK_COMPLETION),
    ("instruction_following", "constraint_adherence", "instruct-constraint", CONSTRAINT_ADHERENCE),
    ("ambiguity_context", "pronoun_resolution", "ambig-pronoun", PRONOUN_RESOLUTION),
    ("ambiguity_context", "word_sense", "ambig-sense", WORD_SENSE),
    ("ambiguity_context", "context_lookup", "ambig-context", CONTEXT_LOOKUP),
    ("hallucination_bait", "false_attribution", "bait-attrib", FALSE_ATTRIBUTION),
    ("hallucination_bait", "nonexistent_entity", "bait-nonexist", NONEXISTENT_ENTITY),
    ("hallucination_bait", "false_fact", "bait-falsefact", FALSE_FACT),
]


def chain_of_thought_rows() -> list[tuple]:
    # Worked answers end with the result, so these checks read the *last* number of the answer.
    return [(p, num(v, position="last"), ev, f"{v}") for p, v, ev in CHAIN_OF_THOUGHT]


def build() -> list[dict]:
    cases = []
    for category, subcategory, prefix, rows in SECTIONS:
        source = "handwritten"
        if subcategory == "arithmetic":
            rows, source = generate_arithmetic(), ARITHMETIC_SOURCE
        elif subcategory == "chain_of_thought":
            rows = chain_of_thought_rows()
        for i, row in enumerate(rows, start=1):
            if row is None:  # retired: keep the number, drop the case
                continue
            prompt, check, evidence, hint = row
            cases.append(
                {
                    "id": f"{prefix}-{i:03d}",
                    "category": category,
                    "subcategory": subcategory,
                    "prompt": prompt,
                    "check": check,
                    "evidence": evidence,
                    "answer_hint": hint,
                    "source": source,
                }
            )
    return cases


def validate(cases: list[dict]) -> None:
    """Fail loudly before writing: schema, unique ids and prompts, and every hint passes its own check."""
    ids = Counter(c["id"] for c in cases)
    prompts = Counter(c["prompt"] for c in cases)
    dupes = [k for k, n in (ids + prompts).items() if n > 1]
    if dupes:
        raise SystemExit(f"duplicate ids or prompts: {dupes}")
    for raw in cases:
        case = Case.model_validate(raw)
        result = check_answer(case, case.answer_hint)
        if not result.passed:
            raise SystemExit(f"{case.id}: answer_hint {case.answer_hint!r} fails its own check: {result.detail}")


def counts_table(cases: list[dict]) -> str:
    per_sub = Counter((c["category"], c["subcategory"]) for c in cases)
    per_cat = Counter(c["category"] for c in cases)
    evidence = Counter(c["category"] for c in cases if c["evidence"])
    lines = ["| category | subcategory | cases | with evidence |", "|---|---|---:|---:|"]
    for category, subs in CATEGORIES.items():
        for sub in subs:
            n_ev = sum(1 for c in cases if c["subcategory"] == sub and c["evidence"])
            lines.append(f"| {category} | {sub} | {per_sub[(category, sub)]} | {n_ev} |")
        lines.append(f"| **{category}** | *all* | **{per_cat[category]}** | **{evidence[category]}** |")
    lines.append(f"| **total** | | **{len(cases)}** | **{sum(evidence.values())}** |")
    return "\n".join(lines)


def update_readme(table: str) -> None:
    text = README.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(TABLE_START) + r".*?" + re.escape(TABLE_END), re.DOTALL)
    if not pattern.search(text):
        raise SystemExit(f"{README} has no {TABLE_START} ... {TABLE_END} markers")
    README.write_text(pattern.sub(lambda _: f"{TABLE_START}\n{table}\n{TABLE_END}", text), encoding="utf-8")


def main() -> None:
    cases = build()
    validate(cases)
    with OUT.open("w", encoding="utf-8") as f:
        for case in cases:
            f.write(json.dumps(case, ensure_ascii=False) + "\n")
    update_readme(counts_table(cases))
    print(f"wrote {len(cases)} cases to {OUT} and the counts table in {README}")


if __name__ == "__main__":
    main()
