"""Real English words for the offline tweet corpus of :mod:`course_lib.datasets`.

Written for the course: frequent function words, everyday words of the
things people tweet about (ordered roughly from frequent to rare), and words
that carry a positive or a negative sentiment. No invented words: the "most
positive / negative words" a model learns from the corpus read as real text.
"""

FUNCTION_WORDS = """
i the to a my and is it in for you of on me so have that just at with be now was
get up all out this go do what are am will your we can its im about there how got
one from when if her he she they them some back time know see think going been an
or as by our had here still then off more would his new really well much want need
gonna night tomorrow morning home today day u ur tonight yeah oh lol haha right
""".split()

EVERYDAY_WORDS = """
work school class music movie game phone car dog cat coffee lunch dinner bed house beach twitter
tweet facebook iphone show song album concert tv book city bus train weather sun food pizza mom
dad sister brother baby boyfriend girlfriend friend team office meeting boss job money shopping
store mall gym run walk hair shoes dress room kitchen garden park trip flight airport hotel
vacation week weekend sunday monday friday saturday exam exams homework test paper project email
computer laptop internet video youtube photo pics blog radio band tour tickets church wedding
graduation going think know see make want need feel look watch come take getting doing making
talk call text read write sleep eat drink cook clean drive play sing dance listen wait working
watching listening reading writing sleeping eating drinking driving playing waiting talking
thinking looking trying leaving coming starting finishing went came saw made took gave said told
heard felt found left moved bought sent met tried started finished watched played called talked
worked cleaned cooked walked stayed woke slept ate drank drove wrote sang danced waited studied
passed people guys girls boys kids family parents mum grandma grandpa cousin aunt uncle husband
wife son daughter neighbor roommate teacher student doctor nurse driver morning afternoon
evening night midnight noon hour hours minute minutes second year years month months today
yesterday tomorrow tonight summer winter spring fall autumn holiday holidays christmas easter
halloween birthday anniversary breakfast brunch snack dessert cake cookies chocolate icecream
candy bread cheese sandwich burger fries chicken salad soup pasta rice sushi tacos steak eggs
bacon tea water juice beer wine soda milk smoothie cocktail bottle cup glass plate street road
corner town village country state world place home apartment flat door window floor wall roof
yard pool lake river sea ocean mountain hill forest island bridge station library museum theater
cinema restaurant cafe bar club pub shop market bakery bank hospital clinic pharmacy post gas
truck bike bicycle motorcycle plane boat ship taxi cab subway metro traffic ticket seat line
queue crowd parking lot highway exit map cell battery charger screen keyboard mouse printer
camera speaker headphones app apps update download upload website site page comment status
profile account password message messages inbox reply link follow followers following friends
fans picture pictures selfie clip channel episode season series news story article magazine
newspaper headline report interview games match score goal points player players coach stadium
league football soccer basketball baseball hockey tennis golf swimming running cycling race
marathon workout training practice yoga songs singer guitar piano drums lyrics playlist festival
gig stage party movies film films actor actress director trailer scene books novel chapter
author poem poetry stories comic comics art painting drawing design photos photography studio
gallery classes lecture course quiz grade grades essay assignment deadline semester college
university campus degree jobs meetings career shift overtime salary paycheck rent bills cash
card wallet budget price sale deal rain snow wind storm thunder lightning sunshine clouds fog
heat cold temperature degrees forecast umbrella jacket coat sweater scarf boots gloves clothes
shirt jeans pants shorts skirt hat socks sneakers bag haircut makeup nails perfume mirror shower
bath towel soap pillow blanket couch sofa chair table desk lamp light lights fridge oven stove
microwave dishes laundry groceries dogs puppy cats kitten bird birds fish horse pets flowers
tree trees grass plants leaves children toddler teenager adult life day days nights time times
moment moments memories dream dreams plan plans idea ideas question questions answer answers
reason reasons problem problems chance luck truth secret surprise gift gifts present thing
things stuff something nothing everything anything someone everyone way ways side end start
beginning middle part piece bit lots decade little big small huge tiny long short tall old young
new fresh early late fast slow quick easy hard simple busy free full empty hot warm cool wet dry
dark bright loud quiet soft dirty red blue green yellow pink purple orange black white grey
brown first last next other same different real whole only own high low open closed ready done
sure true actually probably maybe almost already always never sometimes usually again still even
just really very pretty quite totally seriously literally finally hopefully honestly basically
definitely absolutely completely soon later outside inside upstairs downstairs nearby away
together alone around across along through during before after until anyway though although
because since unless while whether sleepy hungry thirsty lazy awake asleep check checking
checked buy buying bring bringing close turn move stay leave return visit travel fly ride wear
wash fix build paint draw grow change keep hold carry send share finish begin stop continue pass
fail win lose learn teach study remember forget understand explain believe wonder guess hope
wish expect decide choose ask tell say speak shout whisper laugh smile cry meet join invite host
celebrate opened closing turned wearing washing fixing building growing sending sharing posting
uploading tweeting learning teaching studying practicing remembering forgetting celebrating
visiting travelling flying riding
""".split()

POSITIVE_WORDS = """
love good great happy thanks thank awesome fun best nice glad amazing cool enjoy
enjoyed excited yay beautiful wonderful sweet perfect hope smile laugh congrats
welcome cute funny proud lovely brilliant fantastic yummy win won ready finally
sunshine relaxing blessed hugs party friends birthday summer excellent favorite
loving hehe woohoo xoxo rocks super fab thx like
""".split()

NEGATIVE_WORDS = """
sad miss sorry bad hate sick tired bored ugh hurts lost worst sucks poor headache
cry crying stupid broke broken fail failed annoying upset lonely pain sore damn hurt
missing sadly unfortunately terrible horrible awful scared worried stressed exhausted
ill died rip gone wrong problem hungry cold rain raining late boring disappointed
angry fml sigh cancelled flu sucked missed
""".split()

NEGATIONS = ["not", "dont", "don't", "cant", "can't", "never", "no", "isn't", "wasn't"]
