"""Group C: Tokenizer, RegexTokenizer, NGram, StopWordsRemover, HashingTF, CountVectorizer,
StringIndexer, OneHotEncoder.

Expected values come from scikit-learn where it computes the same thing (with Flink ML's
documented differences applied explicitly, named in each case's "reference"), are copied
literally from Flink ML's unit tests (apache/flink-ml @ 583a6199,
flink-ml-lib/src/test/java/org/apache/flink/ml/feature/), or come from the short Python ports
of Flink's Java logic below (Java's String.split, String.hashCode, HashMap iteration order,
Double.toString and Guava's murmur3_32) where no library computes the same thing.
"""
import re
import string
import struct
from collections import Counter
from decimal import Decimal

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer as SkCountVectorizer
from sklearn.preprocessing import OneHotEncoder as SkOneHotEncoder
from sklearn.preprocessing import OrdinalEncoder

from .common import case, sparse

FLINK_TEST = "flink test: "


# ---------------------------------------------------------------------------------------------
# Ports of the Java behaviour the stages rely on
# ---------------------------------------------------------------------------------------------
def utf16_units(s):
    """The UTF-16 code units of a Java string."""
    data = s.encode("utf-16-le")
    return [data[i] | (data[i + 1] << 8) for i in range(0, len(data), 2)]


def java_length(s):
    """Java's String.length(): UTF-16 code units, not code points."""
    return len(utf16_units(s))


def python_regex(pattern):
    """A Java regex as a Python one. Only the syntax both engines read alike is used in the
    fixtures, plus Java's POSIX class \\p{Punct} (= string.punctuation, ASCII only)."""
    return pattern.replace("\\p{Punct}", "[" + re.escape(string.punctuation) + "]")


def java_split(pattern, text):
    """Java's Pattern.compile(pattern).split(text) (limit 0), a port of Pattern.split:
    a zero-width match at index 0 never yields a leading empty string, a positive-width one
    does; no match returns [text]; trailing empty strings are removed."""
    index = 0
    out = []
    for m in re.finditer(python_regex(pattern), text, flags=re.ASCII):
        if index == 0 and m.start() == 0 and m.start() == m.end():
            continue
        out.append(text[index : m.start()])
        index = m.end()
    if index == 0:
        return [text]
    out.append(text[index:])
    while out and out[-1] == "":
        out.pop()
    return out


def java_find_all(pattern, text):
    """Every Matcher.find() group of a Java pattern (patterns with no zero-width matches)."""
    return [m.group() for m in re.finditer(python_regex(pattern), text, flags=re.ASCII)]


def java_string_hash(s):
    """Java's String.hashCode() as an unsigned 32-bit value."""
    h = 0
    for unit in utf16_units(s):
        h = (31 * h + unit) & 0xFFFFFFFF
    return h


def java_hashmap_capacity(size):
    """The table size of a java.util.HashMap grown by `size` puts from the default capacity 16
    (it doubles when size > 0.75 * capacity)."""
    capacity = 16
    while size > 0.75 * capacity:
        capacity *= 2
    return capacity


def java_hashmap_bucket(key, capacity):
    """The bucket of a String key: (h ^ (h >>> 16)) & (capacity - 1), h = key.hashCode()."""
    h = java_string_hash(key)
    return (h ^ (h >> 16)) & (capacity - 1)


def java_hashmap_iteration(keys):
    """Iteration order of a java.util.HashMap<String, ?> holding `keys` (given in insertion
    order): buckets in index order, insertion order within a bucket (no treeified bins)."""
    capacity = java_hashmap_capacity(len(keys))
    return sorted(keys, key=lambda k: java_hashmap_bucket(k, capacity))  # stable


def java_hashmap_order(keys, *, tie_groups=None):
    """java_hashmap_iteration, for uses that must not depend on insertion order (which varies
    with partitioning in Flink): the keys of each tie group (without groups: all keys) must sit
    in distinct buckets, and no bucket may treeify (>= 8 keys); both checked."""
    capacity = java_hashmap_capacity(len(keys))
    for group in tie_groups if tie_groups is not None else [keys]:
        buckets = [java_hashmap_bucket(k, capacity) for k in group]
        if len(set(buckets)) != len(buckets):
            raise ValueError(f"keys {group} share a HashMap bucket (capacity {capacity})")
    sizes = Counter(java_hashmap_bucket(k, capacity) for k in keys)
    assert max(sizes.values(), default=0) < 8, "a treeified bucket: order not modelled"
    return java_hashmap_iteration(keys)


def java_double_to_string(x):
    """Java's Double.toString for the plain values used here: decimal notation for
    1e-3 <= |x| < 1e7 (at least one fractional digit), computerized scientific notation
    (d.dddE<n>) otherwise; "-0.0" keeps its sign."""
    if x == 0.0:
        return "-0.0" if str(x).startswith("-") else "0.0"
    sign = "-" if x < 0 else ""
    d = Decimal(repr(abs(x)))
    if 1e-3 <= abs(x) < 1e7:
        text = format(d, "f")
        if "." not in text:
            text += ".0"
        return sign + text
    digits = d.as_tuple().digits
    while len(digits) > 1 and digits[-1] == 0:
        digits = digits[:-1]
    exponent = d.adjusted()
    mantissa = str(digits[0]) + "." + ("".join(map(str, digits[1:])) or "0")
    return f"{sign}{mantissa}E{exponent}"


def java_number_string(value, column_type):
    """String.valueOf of a numeric cell: Double prints like 1.0, Long/Integer like 1."""
    if column_type == "Double":
        return java_double_to_string(float(value))
    return str(int(value))


# ---------------------------------------------------------------------------------------------
# Tokenizer
# ---------------------------------------------------------------------------------------------
def tokenize(text):
    """TokenizerUdf.eval: input.toLowerCase().split("\\s") (Java's \\s = [ \\t\\n\\x0B\\f\\r])."""
    return java_split(r"\s", text.lower())


def tokenizer():
    out = []
    # TokenizerTest: INPUT and EXPECTED_OUTPUT, copied literally.
    out.append(
        case(
            "default params",
            "Tokenizer",
            {},
            [["input", "String"]],
            [{"input": "Test for tokenization."}, {"input": "Te,st. punct"}],
            [{"output": ["test", "for", "tokenization."]}, {"output": ["te,st.", "punct"]}],
            reference=FLINK_TEST + "TokenizerTest.testTransform",
        )
    )
    texts = [
        "Hello World",
        "a  b",  # two spaces: an empty token between
        "  Leading spaces",  # leading whitespace: leading empty tokens
        "trailing spaces \t ",  # trailing empty tokens are removed
        "tab\tseparated\nand\rnew\x0blines\x0cfeed",  # every Java \s character splits
        "crlf\r\nline",  # \r\n is two separators: an empty token
        "",  # no match: [""]
        "   ",  # whitespace only: every token empty, all removed
        "MiXeD CaSe ÀÉÎ",  # lower-cased (non-ASCII letters too)
        "no\u00a0break",  # a no-break space is not Java \s
        "single",
    ]
    out.append(
        case(
            "whitespace edge cases, custom columns",
            "Tokenizer",
            {"inputCol": "text", "outputCol": "tokens"},
            [["text", "String"]],
            [{"text": t} for t in texts],
            [{"tokens": tokenize(t)} for t in texts],
            reference='port of Java input.toLowerCase().split("\\\\s") (Pattern.split, '
            "limit 0: trailing empty strings dropped, no match -> [input]); checked against "
            "TokenizerTest",
        )
    )
    return out


# ---------------------------------------------------------------------------------------------
# RegexTokenizer
# ---------------------------------------------------------------------------------------------
def regex_tokenize(text, *, pattern="\\s+", gaps=True, to_lowercase=True, min_token_length=1):
    """RegexTokenizerUdf.eval: split (gaps) or find-all, keeping tokens whose Java length()
    (UTF-16 units) is >= minTokenLength."""
    text = text.lower() if to_lowercase else text
    tokens = java_split(pattern, text) if gaps else java_find_all(pattern, text)
    return [t for t in tokens if java_length(t) >= min_token_length]


def regex_tokenizer():
    out = []
    flink_input = [{"input": "Test for tokenization."}, {"input": "Te,st. punct"}]
    # RegexTokenizerTest.testTransform: four param settings, expected rows copied literally.
    flink_cases = [
        ("default params", {}, [["test", "for", "tokenization."], ["te,st.", "punct"]]),
        (
            "toLowercase=false",
            {"toLowercase": False},
            [["Test", "for", "tokenization."], ["Te,st.", "punct"]],
        ),
        (
            "gaps=false, pattern=\\w+|\\p{Punct}",
            {"gaps": False, "pattern": "\\w+|\\p{Punct}", "toLowercase": True},
            [["test", "for", "tokenization", "."], ["te", ",", "st", ".", "punct"]],
        ),
        (
            "gaps=false, minTokenLength=3, pattern=\\w+|\\p{Punct}",
            {"gaps": False, "minTokenLength": 3, "pattern": "\\w+|\\p{Punct}", "toLowercase": True},
            [["test", "for", "tokenization"], ["punct"]],
        ),
    ]
    for name, params, expected in flink_cases:
        port = [
            regex_tokenize(
                r["input"],
                pattern=params.get("pattern", "\\s+"),
                gaps=params.get("gaps", True),
                to_lowercase=params.get("toLowercase", True),
                min_token_length=params.get("minTokenLength", 1),
            )
            for r in flink_input
        ]
        assert port == expected, (name, port)
        out.append(
            case(
                name,
                "RegexTokenizer",
                params,
                [["input", "String"]],
                flink_input,
                [{"output": e} for e in expected],
                reference=FLINK_TEST + "RegexTokenizerTest.testTransform",
            )
        )

    texts = [
        "  Leading and trailing  ",  # a positive-width match at 0: a leading "" token
        "Multiple   Spaces\tAnd\nLines",
        "",  # no match: [""], whose length 0 < 1 drops it
        "ONE",
        "a b cd efg",
        "😀 x yz",  # the emoji is 2 UTF-16 units long
        "no\u00a0break here",  # a no-break space is not Java \s
        "naïve café_au_lait, done!",  # Java \w is ASCII [a-zA-Z_0-9]
        "1+1=2 costs $5~",  # POSIX \p{Punct} holds symbols too (Unicode's \p{P} does not)
    ]
    settings = [
        ("minTokenLength=0 keeps empty tokens", {"minTokenLength": 0}),
        ("minTokenLength=2 counts UTF-16 units", {"minTokenLength": 2}),
        ("toLowercase=false, pattern=[aeiou]", {"toLowercase": False, "pattern": "[aeiou]"}),
        (
            "gaps=false, pattern=[A-Za-z]+, toLowercase=false",
            {"gaps": False, "pattern": "[A-Za-z]+", "toLowercase": False},
        ),
        (
            "gaps=false, pattern=\\w+|\\p{Punct} (ASCII classes)",
            {"gaps": False, "pattern": "\\w+|\\p{Punct}"},
        ),
        (
            "gaps=false, pattern=\\S{2,}, minTokenLength=0",
            {"gaps": False, "pattern": "\\S{2,}", "minTokenLength": 0},
        ),
    ]
    for name, params in settings:
        expected = [
            regex_tokenize(
                t,
                pattern=params.get("pattern", "\\s+"),
                gaps=params.get("gaps", True),
                to_lowercase=params.get("toLowercase", True),
                min_token_length=params.get("minTokenLength", 1),
            )
            for t in texts
        ]
        out.append(
            case(
                name + ", custom columns",
                "RegexTokenizer",
                {"inputCol": "text", "outputCol": "tokens", **params},
                [["text", "String"]],
                [{"text": t} for t in texts],
                [{"tokens": e} for e in expected],
                reference="port of RegexTokenizerUdf.eval: Java Pattern.split (limit 0) or "
                "Matcher.find() groups, token.length() (UTF-16 units) >= minTokenLength; "
                "checked against RegexTokenizerTest",
            )
        )
    # Separators that leave empty tokens between adjacent matches (gaps=true, minTokenLength=0).
    csv = ["a,b,,c", ",lead", "trail,,", "x;y , z"]
    out.append(
        case(
            "gaps=true, pattern=[,;]\\s*, minTokenLength=0",
            "RegexTokenizer",
            {"pattern": "[,;]\\s*", "minTokenLength": 0},
            [["input", "String"]],
            [{"input": t} for t in csv],
            [{"output": java_split("[,;]\\s*", t.lower())} for t in csv],
            reference="port of Java Pattern.split (limit 0): empty tokens between adjacent "
            "separators and a leading one are kept, trailing ones removed",
        )
    )
    return out


# ---------------------------------------------------------------------------------------------
# NGram
# ---------------------------------------------------------------------------------------------
def ngrams(items, n):
    """NGramUdf.eval: n > len -> []; else the len - n + 1 windows joined by one space."""
    if n > len(items):
        return []
    return [" ".join(items[i : i + n]) for i in range(len(items) - n + 1)]


def ngram():
    out = []
    # NGramTest: input and EXPECTED_OUTPUT copied literally (default n = 2).
    flink_input = [[], ["a", "b", "c"], ["a", "b", "c", "d"]]
    flink_expected = [[], ["a b", "b c"], ["a b", "b c", "c d"]]
    assert [ngrams(x, 2) for x in flink_input] == flink_expected
    out.append(
        case(
            "default params",
            "NGram",
            {},
            [["input", "StringArray"]],
            [{"input": x} for x in flink_input],
            [{"output": e} for e in flink_expected],
            reference=FLINK_TEST + "NGramTest.testTransform",
        )
    )
    docs = [
        [],
        ["one"],
        ["the", "quick", "brown", "fox", "jumps"],
        ["", "empty", ""],  # empty items still join with single spaces
        ["with space", "x"],
        ["a", "a", "a"],
    ]
    for n in [1, 3, 5]:
        out.append(
            case(
                f"n={n}, custom columns",
                "NGram",
                {"inputCol": "tokens", "outputCol": "grams", "n": n},
                [["tokens", "StringArray"]],
                [{"tokens": d} for d in docs],
                [{"grams": ngrams(d, n)} for d in docs],
                reference="port of NGramUdf.eval (n > length -> empty array; windows joined "
                "by a single space); checked against NGramTest",
            )
        )
    return out


# ---------------------------------------------------------------------------------------------
# StopWordsRemover
# ---------------------------------------------------------------------------------------------
# Flink's default: flink-ml-lib/src/main/resources/org/apache/flink/ml/feature/stopwords/english.txt
# (181 words, one per line, copied verbatim in file order).
ENGLISH_STOP_WORDS = """
i me my myself we our ours ourselves you your yours yourself yourselves he him his himself she
her hers herself it its itself they them their theirs themselves what which who whom this that
these those am is are was were be been being have has had having do does did doing a an the and
but if or because as until while of at by for with about against between into through during
before after above below to from up down in out on off over under again further then once here
there when where why how all any both each few more most other some such no nor not only own
same so than too very s t can will just don should now i'll you'll he'll she'll we'll they'll
i'd you'd he'd she'd we'd they'd i'm you're he's she's it's we're they're i've we've you've
they've isn't aren't wasn't weren't haven't hasn't hadn't don't doesn't didn't won't wouldn't
shan't shouldn't mustn't can't couldn't cannot could here's how's let's ought that's there's
what's when's where's who's why's would
""".split()
assert len(ENGLISH_STOP_WORDS) == 181


def remove_stop_words(tokens, stop_words, case_sensitive=False):
    """RemoveStopWordsFunction for locales whose lower-casing is Python's str.lower() (not
    tr/az/lt): a token is kept iff it (lower-cased unless caseSensitive) is not in the
    (lower-cased) stop word set; order kept."""
    if case_sensitive:
        stop = set(stop_words)
        return [t for t in tokens if t not in stop]
    stop = {w.lower() for w in stop_words}
    return [t for t in tokens if t.lower() not in stop]


def stop_words_remover():
    out = []
    schema = [["raw", "StringArray"]]

    def flink_case(name, params, pairs, test):
        """A StopWordsRemoverTest case: (raw, expected) pairs copied literally; checked against
        the port where it applies (not for the Turkish locale)."""
        params = {"inputCols": ["raw"], "outputCols": ["filtered"], **params}
        if params.get("locale") is None:
            port = [
                remove_stop_words(
                    raw,
                    params.get("stopWords", ENGLISH_STOP_WORDS),
                    params.get("caseSensitive", False),
                )
                for raw, _ in pairs
            ]
            assert port == [e for _, e in pairs], (name, port)
        out.append(
            case(
                name,
                "StopWordsRemover",
                params,
                schema,
                [{"raw": raw} for raw, _ in pairs],
                [{"filtered": e} for _, e in pairs],
                reference=FLINK_TEST + test,
            )
        )

    # StopWordsRemoverTest.testTransform; its Row.of(new String[] {null}) row is left out: a
    # fixture StringArray cannot hold null.
    flink_case(
        "default params (english list)",
        {},
        [
            (["test", "test"], ["test", "test"]),
            (["a", "b", "c", "d"], ["b", "c", "d"]),
            (["a", "the", "an"], []),
            (["A", "The", "AN"], []),
            ([], []),
        ],
        "StopWordsRemoverTest.testTransform (the [null] row left out)",
    )
    # testTransformWithStopWordsList: its stop word list also holds null, left out here (null
    # never matches a non-null token, so the outputs are unchanged); the [null] row left out.
    flink_case(
        "custom stopWords",
        {"stopWords": ["test", "a", "an", "the"]},
        [
            (["test", "test"], []),
            (["a", "b", "c", "d"], ["b", "c", "d"]),
            (["a", "the", "an"], []),
            (["A", "The", "AN"], []),
            ([], []),
        ],
        "StopWordsRemoverTest.testTransformWithStopWordsList (null stop word and [null] row "
        "left out)",
    )
    flink_case(
        "caseSensitive=true",
        {"caseSensitive": True},
        [(["A"], ["A"]), (["The", "the"], ["The"])],
        "StopWordsRemoverTest.testTransformCaseSensitive",
    )
    # Turkish lower-casing: "mİlk".toLowerCase(new Locale("tr")) is "milk" (dotted capital I ->
    # i), while "cookIe" becomes "cookıe" (dotless i), which is not "cookie".
    flink_case(
        "locale=tr, caseSensitive=false",
        {"stopWords": ["milk", "cookie"], "caseSensitive": False, "locale": "tr"},
        [
            (["mİlk", "and", "nuts"], ["and", "nuts"]),
            (["cookIe", "and", "nuts"], ["cookIe", "and", "nuts"]),
            ([], []),
        ],
        "StopWordsRemoverTest.testTransformWithLocaledInputCaseInsensitive (the [null] row left "
        "out)",
    )
    flink_case(
        "locale=tr, caseSensitive=true",
        {"stopWords": ["milk", "cookie"], "caseSensitive": True, "locale": "tr"},
        [
            (["mİlk", "and", "nuts"], ["mİlk", "and", "nuts"]),
            (["cookIe", "and", "nuts"], ["cookIe", "and", "nuts"]),
            ([], []),
        ],
        "StopWordsRemoverTest.testTransformWithLocaledInputCaseSensitive (the [null] row left "
        "out)",
    )
    flink_case(
        "english list without 'a'",
        {"stopWords": [w for w in ENGLISH_STOP_WORDS if w != "a"]},
        [
            (["python", "scala", "a"], ["python", "scala", "a"]),
            (["Python", "Scala", "swift"], ["Python", "Scala", "swift"]),
        ],
        "StopWordsRemoverTest.testTransformWithIgnoredWords",
    )
    flink_case(
        "english list plus 'python', 'scala'",
        {"stopWords": ENGLISH_STOP_WORDS + ["python", "scala"]},
        [(["python", "scala", "a"], []), (["Python", "Scala", "swift"], ["swift"])],
        "StopWordsRemoverTest.testTransformWithAdditionalWords",
    )

    # testTransformMultipleColumns (the [null] row left out).
    raw1 = [["test", "test"], ["a", "b", "c", "d"], ["a", "the", "an"], ["A", "The", "AN"], []]
    raw2 = [["test1", "test2"], ["a", "b"], ["a", "the", "test1"], ["A", "The", "AN"], []]
    exp1 = [[], ["b", "c", "d"], [], [], []]
    exp2 = [["test1", "test2"], ["b"], ["test1"], [], []]
    stop = ["test", "a", "an", "the"]
    assert [remove_stop_words(r, stop) for r in raw1] == exp1
    assert [remove_stop_words(r, stop) for r in raw2] == exp2
    out.append(
        case(
            "two columns",
            "StopWordsRemover",
            {
                "inputCols": ["raw1", "raw2"],
                "outputCols": ["filtered1", "filtered2"],
                "stopWords": stop,
            },
            [["raw1", "StringArray"], ["raw2", "StringArray"]],
            [{"raw1": a, "raw2": b} for a, b in zip(raw1, raw2)],
            [{"filtered1": a, "filtered2": b} for a, b in zip(exp1, exp2)],
            reference=FLINK_TEST + "StopWordsRemoverTest.testTransformMultipleColumns (the [null] "
            "row left out)",
        )
    )

    # Sentences through the default english list (case-insensitive), incl. apostrophes.
    sentences = [
        "I would have thought that THE answer is obvious",
        "It's what we've been doing all along",
        "Flink ML has stop words: don't, won't, can't",
        "The Nothing and the End",
        "",
        "AGAIN and again AND Again",
    ]
    docs = [s.split(" ") if s else [] for s in sentences]
    out.append(
        case(
            "default english list on sentences",
            "StopWordsRemover",
            {"inputCols": ["raw"], "outputCols": ["filtered"]},
            schema,
            [{"raw": d} for d in docs],
            [{"filtered": remove_stop_words(d, ENGLISH_STOP_WORDS)} for d in docs],
            reference="port of RemoveStopWordsFunction with Flink's english.txt list "
            "(case-insensitive: tokens and stop words lower-cased)",
        )
    )
    out.append(
        case(
            "caseSensitive=true with a mixed-case list",
            "StopWordsRemover",
            {
                "inputCols": ["raw"],
                "outputCols": ["filtered"],
                "stopWords": ["The", "and", "AGAIN"],
                "caseSensitive": True,
            },
            schema,
            [{"raw": d} for d in docs],
            [{"filtered": remove_stop_words(d, ["The", "and", "AGAIN"], True)} for d in docs],
            reference="port of RemoveStopWordsFunction (caseSensitive: exact string match)",
        )
    )
    return out


# ---------------------------------------------------------------------------------------------
# HashingTF
# ---------------------------------------------------------------------------------------------
def murmur3_32(data, seed=0):
    """MurmurHash3_x86_32 of `data` (bytes) as a signed 32-bit int: Guava's murmur3_32(0)
    hashUnencodedChars (UTF-16LE bytes of the string), hashInt (4 LE bytes) and hashLong
    (8 LE bytes) all reduce to it."""
    c1, c2 = 0xCC9E2D51, 0x1B873593
    mask = 0xFFFFFFFF

    def rotl(x, r):
        return ((x << r) | (x >> (32 - r))) & mask

    h = seed & mask
    n = len(data)
    for i in range(0, n - n % 4, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = rotl((k * c1) & mask, 15)
        h ^= (k * c2) & mask
        h = (rotl(h, 13) * 5 + 0xE6546B64) & mask
    tail = data[n - n % 4 :]
    if tail:
        k = int.from_bytes(tail, "little")
        k = rotl((k * c1) & mask, 15)
        h ^= (k * c2) & mask
    h ^= n
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & mask
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & mask
    h ^= h >> 16
    return h - (1 << 32) if h >= 1 << 31 else h


def hashing_tf_hash(obj):
    """HashingTF.hash for the cell types a fixture array holds: String (hashUnencodedChars) and
    Double (hashLong(Double.doubleToLongBits(v)); NaN canonical)."""
    if isinstance(obj, str):
        return murmur3_32(obj.encode("utf-16-le"))
    if isinstance(obj, float):
        bits = struct.unpack("<q", struct.pack("<d", obj))[0]
        if obj != obj:
            bits = 0x7FF8000000000000
        return murmur3_32((bits & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little"))
    raise TypeError(obj)


def hashing_tf(items, num_features=262144, binary=False):
    """HashTFFunction.map: index = nonNegativeMod(hash, numFeatures) (Java % then + mod if
    negative); counts (binary: 1.0); a SparseVector with sorted indices."""
    counts = {}
    for item in items:
        h = hashing_tf_hash(item)
        raw = abs(h) % num_features * (1 if h >= 0 else -1)  # Java's % truncates toward zero
        index = raw + num_features if raw < 0 else raw
        counts[index] = 1 if binary else counts.get(index, 0) + 1
    indices = sorted(counts)
    return sparse(num_features, indices, [float(counts[i]) for i in indices])


def hashing_tf_cases():
    out = []
    flink_input = [
        ["HashingTFTest", "Hashing", "Term", "Frequency", "Test"],
        ["HashingTFTest", "Hashing", "Hashing", "Test", "Test"],
    ]
    # HashingTFTest: EXPECTED_OUTPUT / EXPECTED_BINARY_OUTPUT copied literally.
    flink_expected = [
        sparse(262144, [67564, 89917, 113827, 131486, 228971], [1.0, 1.0, 1.0, 1.0, 1.0]),
        sparse(262144, [67564, 131486, 228971], [1.0, 2.0, 2.0]),
    ]
    flink_binary = [
        sparse(262144, [67564, 89917, 113827, 131486, 228971], [1.0, 1.0, 1.0, 1.0, 1.0]),
        sparse(262144, [67564, 131486, 228971], [1.0, 1.0, 1.0]),
    ]
    assert [hashing_tf(x) for x in flink_input] == flink_expected
    assert [hashing_tf(x, binary=True) for x in flink_input] == flink_binary
    for name, params, expected, test in [
        ("default params", {}, flink_expected, "HashingTFTest.testTransformArrayData"),
        ("binary=true", {"binary": True}, flink_binary, "HashingTFTest.testTransform"),
    ]:
        out.append(
            case(
                name,
                "HashingTF",
                params,
                [["input", "StringArray"]],
                [{"input": x} for x in flink_input],
                [{"output": e} for e in expected],
                reference=FLINK_TEST + test,
            )
        )

    words = "the quick brown fox jumps over the lazy dog and the cat".split()
    docs = [
        words,
        ["a", "b", "c", "a", "b", "a"],
        [],  # no terms: an empty sparse vector
        ["", "", "x"],  # the empty string hashes like any other string
        ["Straße", "naïve", "日本語", "😀", "😀"],  # UTF-16 units are hashed (😀: a pair)
        [str(i) for i in range(20)],
        ["hello", "Hello", "HELLO"],  # case-sensitive
    ]
    for num_features, binary in [(16, False), (16, True), (1000, False), (1, False)]:
        out.append(
            case(
                f"numFeatures={num_features}, binary={str(binary).lower()}, custom columns",
                "HashingTF",
                {
                    "inputCol": "terms",
                    "outputCol": "tf",
                    "numFeatures": num_features,
                    "binary": binary,
                },
                [["terms", "StringArray"]],
                [{"terms": d} for d in docs],
                [{"tf": hashing_tf(d, num_features, binary)} for d in docs],
                reference="port of HashTFFunction: Guava murmur3_32(0).hashUnencodedChars "
                "(MurmurHash3_x86_32 over UTF-16LE), nonNegativeMod(hash, numFeatures), counts "
                "(binary: 1.0); checked against HashingTFTest",
            )
        )
    # A Double[] column: each element hashes as hashLong(Double.doubleToLongBits(v)), so 0.0
    # and -0.0 land on different indices.
    numbers = [[1.0, 2.0, 1.0], [0.0, -0.0, 0.5], [], [3.25, -7.5, 1e10, 1e-10, 3.25]]
    out.append(
        case(
            "Double[] input, numFeatures=64",
            "HashingTF",
            {"numFeatures": 64},
            [["input", "DoubleArray"]],
            [{"input": d} for d in numbers],
            [{"output": hashing_tf(d, 64)} for d in numbers],
            reference="port of HashTFFunction for Double elements: Guava murmur3_32(0)."
            "hashLong(Double.doubleToLongBits(v)) (MurmurHash3_x86_32 over 8 LE bytes)",
        )
    )
    return out


# ---------------------------------------------------------------------------------------------
# CountVectorizer
# ---------------------------------------------------------------------------------------------
CV_MAX_DF_DEFAULT = float(2**63 - 1)  # (double) Long.MAX_VALUE


def sk_counts(docs, vocabulary=None):
    """Per-document term counts from sklearn's CountVectorizer (documents given as token lists,
    no lower-casing); with `vocabulary`, columns in that order."""
    vec = SkCountVectorizer(analyzer=lambda d: d, lowercase=False, vocabulary=vocabulary)
    x = vec.fit_transform(docs).toarray() if vocabulary is None else vec.transform(docs).toarray()
    return x, vec.get_feature_names_out().tolist()


def flink_vocabulary(fit_docs, min_df=1.0, max_df=CV_MAX_DF_DEFAULT, vocabulary_size=262144):
    """VocabularyAggregator.getResult on sklearn's document frequencies: filter (only when
    minDF or maxDF is not its default) with docFreq >= minDF' and <= maxDF' (a value < 1.0 is
    a fraction of the row count, else an absolute count), sort by DOCUMENT frequency
    descending (stable, over Java HashMap iteration order), keep vocabularySize terms."""
    x, terms = sk_counts(fit_docs)
    doc_freq = dict(zip(terms, (x > 0).sum(axis=0).tolist()))
    # Keys enter the accumulator map in document order (ties may not depend on it: checked).
    keys = list(dict.fromkeys(t for d in fit_docs for t in d))
    if min_df != 1.0 or max_df != CV_MAX_DF_DEFAULT:
        n = len(fit_docs)
        lo = min_df if min_df >= 1.0 else min_df * n
        hi = max_df if max_df >= 1.0 else max_df * n
        assert hi >= lo, "maxDF must be >= minDF."
        keys = [k for k in keys if lo <= doc_freq[k] <= hi]
    ties = {}
    for k in keys:
        ties.setdefault(doc_freq[k], []).append(k)
    order = java_hashmap_order(keys, tie_groups=list(ties.values()))
    order.sort(key=lambda k: -doc_freq[k])
    return order[:vocabulary_size]


def count_vectorize(docs, vocabulary, min_tf=1.0, binary=False):
    """PredictOutputFunction.map with counts from sklearn: keep index i iff count >= minTF'
    (minTF' = minTF if minTF >= 1 else len(document) * minTF; so an empty document, or
    minTF = 0, keeps every index, with explicit zeros), values 1.0 if binary."""
    x, _ = sk_counts(docs, vocabulary) if vocabulary else (None, None)
    out = []
    for r, doc in enumerate(docs):
        threshold = min_tf if min_tf >= 1.0 else len(doc) * min_tf
        counts = x[r] if vocabulary else []
        indices = [i for i in range(len(vocabulary)) if counts[i] >= threshold]
        out.append(
            sparse(len(vocabulary), indices, [1.0 if binary else float(counts[i]) for i in indices])
        )
    return out


def count_vectorizer():
    out = []
    # CountVectorizerTest: INPUT_DATA (fit and transformed) and expected vectors copied literally.
    flink_docs = [
        ["a", "c", "b", "c"],
        ["c", "d", "e"],
        ["a", "b", "c"],
        ["e", "f"],
        ["a", "c", "a"],
    ]
    flink_rows = [{"input": d} for d in flink_docs]
    assert flink_vocabulary(flink_docs) == ["c", "a", "b", "e", "d", "f"]  # testGetModelData
    flink = [
        (
            "default params",
            {},
            [
                sparse(6, [0, 1, 2], [2.0, 1.0, 1.0]),
                sparse(6, [0, 3, 4], [1.0, 1.0, 1.0]),
                sparse(6, [0, 1, 2], [1.0, 1.0, 1.0]),
                sparse(6, [3, 5], [1.0, 1.0]),
                sparse(6, [0, 1], [1.0, 2.0]),
            ],
            "CountVectorizerTest.testFitAndPredict",
        ),
        (
            "minDF=2, maxDF=4",
            {"minDF": 2.0, "maxDF": 4.0},
            [
                sparse(4, [0, 1, 2], [2.0, 1.0, 1.0]),
                sparse(4, [0, 3], [1.0, 1.0]),
                sparse(4, [0, 1, 2], [1.0, 1.0, 1.0]),
                sparse(4, [3], [1.0]),
                sparse(4, [0, 1], [1.0, 2.0]),
            ],
            "CountVectorizerTest.testMinMaxDF",
        ),
        (
            "minDF=0.4, maxDF=0.8",
            {"minDF": 0.4, "maxDF": 0.8},
            [
                sparse(4, [0, 1, 2], [2.0, 1.0, 1.0]),
                sparse(4, [0, 3], [1.0, 1.0]),
                sparse(4, [0, 1, 2], [1.0, 1.0, 1.0]),
                sparse(4, [3], [1.0]),
                sparse(4, [0, 1], [1.0, 2.0]),
            ],
            "CountVectorizerTest.testMinMaxDF",
        ),
        (
            "minTF=0.5",
            {"minTF": 0.5},
            [
                sparse(6, [0], [2.0]),
                sparse(6, [], []),
                sparse(6, [], []),
                sparse(6, [3, 5], [1.0, 1.0]),
                sparse(6, [1], [2.0]),
            ],
            "CountVectorizerTest.testMinTF",
        ),
        (
            "binary=true",
            {"binary": True},
            [
                sparse(6, [0, 1, 2], [1.0, 1.0, 1.0]),
                sparse(6, [0, 3, 4], [1.0, 1.0, 1.0]),
                sparse(6, [0, 1, 2], [1.0, 1.0, 1.0]),
                sparse(6, [3, 5], [1.0, 1.0]),
                sparse(6, [0, 1], [1.0, 1.0]),
            ],
            "CountVectorizerTest.testBinary",
        ),
        (
            "vocabularySize=2",
            {"vocabularySize": 2},
            [
                sparse(2, [0, 1], [2.0, 1.0]),
                sparse(2, [0], [1.0]),
                sparse(2, [0, 1], [1.0, 1.0]),
                sparse(2, [], []),
                sparse(2, [0, 1], [1.0, 2.0]),
            ],
            "CountVectorizerTest.testVocabularySize",
        ),
    ]
    for name, params, expected, test in flink:
        vocab = flink_vocabulary(
            flink_docs,
            params.get("minDF", 1.0),
            params.get("maxDF", CV_MAX_DF_DEFAULT),
            params.get("vocabularySize", 262144),
        )
        port = count_vectorize(
            flink_docs, vocab, params.get("minTF", 1.0), params.get("binary", False)
        )
        assert port == expected, (name, port)
        out.append(
            case(
                name,
                "CountVectorizer",
                params,
                [["input", "StringArray"]],
                flink_rows,
                [{"output": e} for e in expected],
                fit=flink_rows,
                reference=FLINK_TEST + test,
            )
        )

    # A larger corpus: fit on 30 documents, transform 8 others (unseen terms, an empty one).
    rng = np.random.default_rng(2024)
    words = "apple banana cherry date elder fig grape honeydew kiwi lemon mango nectarine".split()
    p = 1.0 / np.arange(1, len(words) + 1)
    p /= p.sum()

    def corpus(n):
        return [rng.choice(words, size=int(rng.integers(1, 8)), p=p).tolist() for _ in range(n)]

    fit_docs = corpus(30)
    docs = corpus(6) + [[], ["unseen", "apple", "unseen", "zucchini"]]
    settings = [
        ("default params, custom columns", {"inputCol": "doc", "outputCol": "vec"}),
        ("vocabularySize=5", {"vocabularySize": 5}),
        ("minDF=3 (count), maxDF=0.5 (fraction)", {"minDF": 3.0, "maxDF": 0.5}),
        ("minDF=0.2 (fraction)", {"minDF": 0.2}),
        ("maxDF=1.0 is a count: terms in at most one document", {"maxDF": 1.0}),
        ("minTF=2 (count)", {"minTF": 2.0}),
        ("minTF=0.3 (fraction): an empty document keeps every index", {"minTF": 0.3}),
        ("minTF=0.3, binary=true", {"minTF": 0.3, "binary": True}),
        ("minTF=0: explicit zeros", {"minTF": 0.0}),
    ]
    for name, params in settings:
        col_in = params.get("inputCol", "input")
        col_out = params.get("outputCol", "output")
        vocab = flink_vocabulary(
            fit_docs,
            params.get("minDF", 1.0),
            params.get("maxDF", CV_MAX_DF_DEFAULT),
            params.get("vocabularySize", 262144),
        )
        expected = count_vectorize(
            docs, vocab, params.get("minTF", 1.0), params.get("binary", False)
        )
        out.append(
            case(
                name,
                "CountVectorizer",
                params,
                [[col_in, "StringArray"]],
                [{col_in: d} for d in docs],
                [{col_out: e} for e in expected],
                fit=[{col_in: d} for d in fit_docs],
                reference="sklearn CountVectorizer(analyzer=identity) counts and document "
                "frequencies; Flink's rules applied explicitly: vocabulary sorted by document "
                "frequency desc (ties in Java HashMap order, tied terms in distinct buckets), "
                "minDF/maxDF/minTF < 1.0 are fractions else counts, filtering only when minDF or "
                "maxDF is not its default, minTF' = len(doc) * minTF",
            )
        )
    return out


# ---------------------------------------------------------------------------------------------
# StringIndexer
# ---------------------------------------------------------------------------------------------
INT_MAX = 2**31 - 1


def string_order(values, order_type, max_index_num=INT_MAX):
    """ModelGenerator.map for one column: the strings of a column ordered as Flink orders them.
    alphabet*: String.compareTo (UTF-16 units); frequency*: stable sort by count over Java
    HashMap iteration order (tied strings in distinct buckets, checked); frequencyDesc with more
    than maxIndexNum strings keeps the first maxIndexNum - 1; arbitrary: HashMap order."""
    counts = Counter(values)  # insertion order = first occurrence
    keys = list(counts)
    if order_type == "alphabetAsc":
        return sorted(keys, key=utf16_units)
    if order_type == "alphabetDesc":
        return sorted(keys, key=utf16_units, reverse=True)
    if order_type == "arbitrary":
        return java_hashmap_order(keys)
    ties = {}
    for k in keys:
        ties.setdefault(counts[k], []).append(k)
    order = java_hashmap_order(keys, tie_groups=list(ties.values()))
    if order_type == "frequencyAsc":
        return sorted(order, key=lambda k: counts[k])
    assert order_type == "frequencyDesc"
    order = sorted(order, key=lambda k: -counts[k])
    return order[: max_index_num - 1] if len(order) > max_index_num else order


def string_index(fit_values, values, order_type, handle_invalid, max_index_num=INT_MAX):
    """StringIndexerModel on one column: sklearn OrdinalEncoder with Flink's string order as
    its categories; unseen strings -> len(categories) (handleInvalid=keep)."""
    order = string_order(fit_values, order_type, max_index_num)
    enc = OrdinalEncoder(
        categories=[np.array(order, dtype=object)],
        handle_unknown="use_encoded_value",
        unknown_value=len(order),
    ).fit(np.array(fit_values, dtype=object).reshape(-1, 1))
    out = enc.transform(np.array(values, dtype=object).reshape(-1, 1))[:, 0].astype(float).tolist()
    if handle_invalid == "error":
        assert all(v in order for v in values), "unseen string with handleInvalid=error"
    return out, order


def string_indexer():
    out = []
    reference = (
        "sklearn OrdinalEncoder(categories=<Flink's order>, handle_unknown='use_encoded_value', "
        "unknown_value=<number of strings>) (= handleInvalid keep); Flink's order applied "
        "explicitly: alphabet* by String.compareTo, frequency* by count with ties in Java HashMap "
        "order, arbitrary = Java HashMap order (no two strings share a bucket), frequencyDesc "
        "with maxIndexNum keeps maxIndexNum - 1 strings; numbers indexed as String.valueOf "
        "(Double 1.0 -> \"1.0\", Long 1 -> \"1\")"
    )

    def add(name, params, schema, fit_rows, rows, expected_orders=None):
        in_cols, out_cols = params["inputCols"], params["outputCols"]
        types = dict(schema)
        expected = [{} for _ in rows]
        for j, (cin, cout) in enumerate(zip(in_cols, out_cols)):
            def as_str(v, t=types[cin]):
                return v if t == "String" else java_number_string(v, t)

            idx, order = string_index(
                [as_str(r[cin]) for r in fit_rows],
                [as_str(r[cin]) for r in rows],
                params.get("stringOrderType", "arbitrary"),
                params.get("handleInvalid", "error"),
                params.get("maxIndexNum", INT_MAX),
            )
            if expected_orders is not None:
                assert order == expected_orders[j], (name, order)
            for e, v in zip(expected, idx):
                e[cout] = v
        out.append(
            case(
                name,
                "StringIndexer",
                params,
                schema,
                rows,
                expected,
                fit=fit_rows,
                reference=reference,
            )
        )
        return expected

    # StringIndexerTest's train/predict data without its rows holding null (fixture String cells
    # cannot be null), plus two predict rows of ours.
    schema = [["inputCol1", "String"], ["inputCol2", "Double"]]
    train = [("a", 1.0), ("b", 1.0), ("b", 2.0), ("c", 0.0), ("d", 2.0), ("a", 2.0), ("b", 2.0),
             ("b", -1.0), ("a", -1.0), ("c", -1.0)]
    predict = [("a", 2.0), ("b", 1.0), ("e", 2.0), ("f", 3.0), ("d", 0.0)]
    fit_rows = [{"inputCol1": a, "inputCol2": b} for a, b in train]
    rows = [{"inputCol1": a, "inputCol2": b} for a, b in predict]
    base = {"inputCols": ["inputCol1", "inputCol2"], "outputCols": ["outputCol1", "outputCol2"],
            "handleInvalid": "keep"}
    # Model data as in StringIndexerTest.testGetModelData.
    asc = add("alphabetAsc, keep (StringIndexerTest data without nulls)",
              {**base, "stringOrderType": "alphabetAsc"}, schema, fit_rows, rows,
              [["a", "b", "c", "d"], ["-1.0", "0.0", "1.0", "2.0"]])
    # The rows StringIndexerTest checks and that survive here agree with its expectations.
    checked = [(e["outputCol1"], e["outputCol2"]) for e in asc[:3]]
    assert checked == [(0.0, 3.0), (1.0, 2.0), (4.0, 3.0)]
    add("alphabetDesc, keep", {**base, "stringOrderType": "alphabetDesc"}, schema, fit_rows, rows,
        [["d", "c", "b", "a"], ["2.0", "1.0", "0.0", "-1.0"]])
    add("frequencyAsc, keep", {**base, "stringOrderType": "frequencyAsc"}, schema, fit_rows, rows,
        [["d", "c", "a", "b"], ["0.0", "1.0", "-1.0", "2.0"]])
    add("frequencyDesc, keep", {**base, "stringOrderType": "frequencyDesc"}, schema, fit_rows, rows,
        [["b", "a", "c", "d"], ["2.0", "-1.0", "1.0", "0.0"]])
    add("frequencyDesc, maxIndexNum=3, keep",
        {**base, "stringOrderType": "frequencyDesc", "maxIndexNum": 3}, schema, fit_rows, rows,
        [["b", "a"], ["2.0", "-1.0"]])

    # Ties, numbers as strings, the default arbitrary order and handleInvalid=error.
    rng = np.random.default_rng(5)
    # Values chosen so that no two strings of a column share a HashMap bucket (checked).
    colors = ["red", "green", "blue", "yellow", "purple", "pink", "cyan"]
    weights = np.array([6, 6, 4, 4, 4, 2, 1], dtype=float)
    color_fit = rng.permutation(np.repeat(colors, weights.astype(int))).tolist()
    n = len(color_fit)
    longs = rng.choice([1, 2, 3, 10, 20, -5], size=n).tolist()
    doubles = rng.choice([0.5, 1.0, 10.0, 2.5, -0.0, 0.0, 1e7, 1e-4], size=n).tolist()
    schema2 = [["color", "String"], ["code", "Long"], ["value", "Double"]]
    fit2 = [
        {"color": c, "code": int(code), "value": float(v)}
        for c, code, v in zip(color_fit, longs, doubles)
    ]
    rows2 = fit2[::3]
    cols = {
        "inputCols": ["color", "code", "value"],
        "outputCols": ["colorIndex", "codeIndex", "valueIndex"],
    }
    add("default params (arbitrary = Java HashMap order, error)", cols, schema2, fit2, rows2)
    for order_type in ["alphabetAsc", "alphabetDesc", "frequencyAsc", "frequencyDesc"]:
        add(f"{order_type}, ties and numbers, error", {**cols, "stringOrderType": order_type},
            schema2, fit2, rows2)
    unseen = rows2[:4] + [{"color": "white", "code": 7, "value": 3.0},
                          {"color": "RED", "code": -1, "value": 1e-5}]
    add("frequencyDesc, maxIndexNum=4, keep",
        {**cols, "stringOrderType": "frequencyDesc", "maxIndexNum": 4, "handleInvalid": "keep"},
        schema2, fit2, unseen)
    add("alphabetAsc, keep with unseen values", {**cols, "stringOrderType": "alphabetAsc",
        "handleInvalid": "keep"}, schema2, fit2, unseen)
    return out


# ---------------------------------------------------------------------------------------------
# OneHotEncoder
# ---------------------------------------------------------------------------------------------
def one_hot(fit_col, col, drop_last):
    """OneHotEncoderModel on one column via sklearn OneHotEncoder(categories=[0..max]) where
    max is the largest training index; dropLast drops category max (drop=[max]), so it encodes
    as the all-zero vector of size max. Sparse output with sorted indices."""
    top = int(max(fit_col))
    enc = SkOneHotEncoder(
        categories=[list(range(top + 1))], drop=[top] if drop_last else None, sparse_output=True
    ).fit(np.array(fit_col, dtype=int).reshape(-1, 1))
    x = enc.transform(np.array(col, dtype=int).reshape(-1, 1)).tocsr()
    x.sort_indices()
    rows_of = [slice(x.indptr[r], x.indptr[r + 1]) for r in range(x.shape[0])]
    return [sparse(x.shape[1], x.indices[r], x.data[r]) for r in rows_of]


def one_hot_encoder():
    out = []
    # OneHotEncoderTest: train [0, 1, 2, 0], predict [0, 1, 2], expected copied literally.
    train = [0.0, 1.0, 2.0, 0.0]
    predict = [0.0, 1.0, 2.0]
    drop = [sparse(2, [0], [1.0]), sparse(2, [1], [1.0]), sparse(2, [], [])]
    keep = [sparse(3, [0], [1.0]), sparse(3, [1], [1.0]), sparse(3, [2], [1.0])]
    assert one_hot(train, predict, True) == drop and one_hot(train, predict, False) == keep
    for name, column_type, params, expected, test in [
        ("default params", "Double", {}, drop, "OneHotEncoderTest.testFitAndPredict"),
        ("dropLast=false", "Double", {"dropLast": False}, keep, "OneHotEncoderTest.testDropLast"),
        ("integer input", "Long", {}, drop, "OneHotEncoderTest.testInputDataType"),
    ]:
        as_type = float if column_type == "Double" else int
        out.append(
            case(
                name,
                "OneHotEncoder",
                {"inputCols": ["input"], "outputCols": ["output"], **params},
                [["input", column_type]],
                [{"input": as_type(v)} for v in predict],
                [{"output": e} for e in expected],
                fit=[{"input": as_type(v)} for v in train],
                reference=FLINK_TEST + test,
            )
        )

    # Two columns (Double and Long); category 3 of the first never occurs in training.
    rng = np.random.default_rng(17)
    a_fit = rng.choice([0, 1, 2, 4, 5], size=25).tolist()
    b_fit = rng.integers(0, 7, size=25).tolist()
    a_fit[7], b_fit[3] = 5, 6  # make sure the maxima are there
    a_in = [0, 1, 2, 3, 4, 5, 3, 0]
    b_in = [6, 5, 4, 3, 2, 1, 0, 6]
    schema = [["a", "Double"], ["b", "Long"]]
    fit_rows = [{"a": float(x), "b": int(y)} for x, y in zip(a_fit, b_fit)]
    rows = [{"a": float(x), "b": int(y)} for x, y in zip(a_in, b_in)]
    for drop_last in [True, False]:
        ea, eb = one_hot(a_fit, a_in, drop_last), one_hot(b_fit, b_in, drop_last)
        out.append(
            case(
                f"two columns, dropLast={str(drop_last).lower()}",
                "OneHotEncoder",
                {"inputCols": ["a", "b"], "outputCols": ["aVec", "bVec"], "dropLast": drop_last,
                 "handleInvalid": "error"},
                schema,
                rows,
                [{"aVec": x, "bVec": y} for x, y in zip(ea, eb)],
                fit=fit_rows,
                reference="sklearn OneHotEncoder(categories=[0..max training index], "
                "drop=[max] if dropLast else None), sparse output",
            )
        )
    # Quirks of the Java code: with dropLast=false the index max + 1 equals the category size
    # and encodes as the empty vector (not an error); with dropLast=true and a training max of
    # 0 every vector has size 0.
    out.append(
        case(
            "dropLast=false: index max + 1 encodes as the empty vector",
            "OneHotEncoder",
            {"inputCols": ["input"], "outputCols": ["output"], "dropLast": False},
            [["input", "Double"]],
            [{"input": v} for v in [0.0, 2.0, 3.0]],
            [
                {"output": sparse(3, [0], [1.0])},
                {"output": sparse(3, [2], [1.0])},
                {"output": sparse(3, [], [])},
            ],
            fit=[{"input": v} for v in [2.0, 1.0, 0.0]],
            reference="port of GenerateOutputsFunction.map: categorySize = max + 1; "
            "idx == categorySize -> Vectors.sparse(categorySize, [], [])",
        )
    )
    out.append(
        case(
            "dropLast=true with only index 0: size-0 vectors",
            "OneHotEncoder",
            {"inputCols": ["input"], "outputCols": ["output"]},
            [["input", "Long"]],
            [{"input": 0}, {"input": 0}],
            [{"output": sparse(0, [], [])}, {"output": sparse(0, [], [])}],
            fit=[{"input": 0}, {"input": 0}, {"input": 0}],
            reference="sklearn OneHotEncoder(categories=[[0]], drop=[0]) gives 0 columns; Flink: "
            "categorySize = max = 0 and idx 0 == categorySize -> Vectors.sparse(0, [], [])",
        )
    )
    assert one_hot([0, 0, 0], [0, 0], True) == [sparse(0, [], []), sparse(0, [], [])]
    return out


# ---------------------------------------------------------------------------------------------
# Self-checks of the ports against values verified in Java / Flink's tests
# ---------------------------------------------------------------------------------------------
def self_check():
    assert tokenize("Test for tokenization.") == ["test", "for", "tokenization."]
    assert tokenize("a  b") == ["a", "", "b"]
    assert tokenize("") == [""]
    assert tokenize("   ") == []
    assert java_split(r"\s+", " a b") == ["", "a", "b"]
    # Guava murmur3_32(0) values verified in Java; HashingTF indices for numFeatures 2^18.
    for text, h in [("0", 384918240), ("1", -126235597), ("a", 1867108634), ("hello", -675079799)]:
        assert hashing_tf_hash(text) == h, text
    assert murmur3_32((1).to_bytes(4, "little")) == -68075478  # hashInt(1)
    assert murmur3_32((1).to_bytes(8, "little")) == 1392991556  # hashLong(1L)
    assert hashing_tf_hash(1.0) == -142385009  # hashLong(doubleToLongBits(1.0))
    for text, index in [("0", 90848), ("1", 117811), ("9", 167146), ("42", 68930), ("a", 119066),
                        ("hello", 203145)]:
        assert hashing_tf([text])["indices"] == [index], text
    assert java_double_to_string(1.0) == "1.0"
    assert java_double_to_string(-0.0) == "-0.0"
    assert java_double_to_string(1e-5) == "1.0E-5"
    assert java_double_to_string(123456789.0) == "1.23456789E8"
    assert java_double_to_string(0.001) == "0.001"
    assert java_double_to_string(1e7) == "1.0E7"
    assert java_double_to_string(9999999.5) == "9999999.5"
    # "0".."99" inserted in order iterate as 88..97, 10, 98, 11, 99, 12..19, 0..9, 20..87 (Java).
    order = java_hashmap_iteration([str(i) for i in range(100)])
    expected = (
        [str(i) for i in range(88, 98)]
        + ["10", "98", "11", "99"]
        + [str(i) for i in range(12, 20)]
        + [str(i) for i in range(10)]
        + [str(i) for i in range(20, 88)]
    )
    assert order == expected, order


def cases():
    self_check()
    return {
        "Tokenizer": tokenizer(),
        "RegexTokenizer": regex_tokenizer(),
        "NGram": ngram(),
        "StopWordsRemover": stop_words_remover(),
        "HashingTF": hashing_tf_cases(),
        "CountVectorizer": count_vectorizer(),
        "StringIndexer": string_indexer(),
        "OneHotEncoder": one_hot_encoder(),
    }
