"""The pinned catalogue of the `nietzsche` source: Nietzsche's works in English on Project
Gutenberg, each with its ebook number, the name of its local copy, its size and its sha256.

The checksums are those of the copies documented in ``shared/data/SOURCES.md`` (the Gutenberg
plain-text files as mirrored on GitHub, byte for byte: UTF-8, most with a BOM, two with CRLF
line endings, Gutenberg header and licence included). Project Gutenberg re-generates its files
from time to time; a download that no longer matches its pin is refused (nothing is cached) and
the message says how to proceed (``from_dir`` with pinned copies, or ``verify=false``).

Keys are the copies' file names without ``.txt``; their sorted order is the corpus order.
"""

from __future__ import annotations

from dataclasses import dataclass

GUTENBERG_BASE = "https://www.gutenberg.org/cache/epub"


@dataclass(frozen=True)
class Work:
    key: str  # file name of the copy, without .txt
    title: str
    translator: str
    ebook: int  # Project Gutenberg ebook number
    size: int  # bytes of the pinned file
    sha256: str

    @property
    def file_name(self) -> str:
        return f"{self.key}.txt"

    def url(self, base: str = GUTENBERG_BASE) -> str:
        """Gutenberg's plain-text URL pattern: <base>/<id>/pg<id>.txt."""
        return f"{base.rstrip('/')}/{self.ebook}/pg{self.ebook}.txt"


_W = Work
WORKS: tuple[Work, ...] = (
    _W("beyond_good_and_evil", "Beyond Good and Evil", "Helen Zimmern", 4363, 402515,
       "2c6563b6eccb2bee23152a39821d578ec468c4bf98e135278864a683475d64c9"),
    _W("early_greek_philosophy_and_other_essays", "Early Greek Philosophy & Other Essays",
       "Maximilian A. Mügge", 51548, 304780,
       "a17c7bb6feba80460a853ea02402eb7ad7bc3a72fec3de05b1833b932f399bcb"),
    _W("ecce_homo", "Ecce Homo", "Anthony M. Ludovici", 52190, 297077,
       "b2daf93597dea92b6046c1385e9ada9d71f323a9d1925bcb0b9f9307164e928b"),
    _W("homer_and_classical_philology", "Homer and Classical Philology", "J. M. Kennedy", 18188,
       59400, "2cf7475fcbad87f1ae2c9f5f9050e4d1c0340728d3cdfb9693e91cd6262dcbab"),
    _W("human_all_too_human_harvey", "Human, All Too Human (abridged selection)",
       "Alexander Harvey", 38145, 239922,
       "ec4aaaf853863d7ecf91eb2f6c1a63538c5c2b7b4d36e8b5dbef003c6cb38c1c"),
    _W("human_all_too_human_part_i_zimmern", "Human All-Too-Human, Part 1", "Helen Zimmern",
       51935, 586628, "25cbb3d5f1e0208f5a073f2ca7897db25b5b862f24c6ce49864600490e84a68f"),
    _W("human_all_too_human_part_ii_cohn", "Human, All-Too-Human, Part II", "Paul V. Cohn",
       37841, 537283, "63da842ad4eb45f3a1c0774728f17991b50582c94d7b0147da0b2eff10b002d2"),
    _W("on_the_future_of_our_educational_institutions",
       "On the Future of our Educational Institutions", "J. M. Kennedy", 28146, 234624,
       "99cd2da7419bad19ba416d5dbadb9d764a313ce04c31288cb39050096435d929"),
    _W("the_antichrist", "The Antichrist", "H. L. Mencken", 19322, 222664,
       "b7c704df849c3ab0b3d34a1a8aa4deb23ff69cb652a3babf6b5ebee86e656e81"),
    _W("the_birth_of_tragedy", "The Birth of Tragedy", "William A. Haussmann", 51356, 347775,
       "577973fe3ed6773a9e53151228c19950927f04749a82c4de44063c86efce4f35"),
    _W("the_case_of_wagner", "The Case of Wagner, Nietzsche contra Wagner, Selected Aphorisms",
       "Anthony M. Ludovici", 25012, 187703,
       "58534a43eb164019fac9a8d021a301afe6f1d65392504363913a0d84865d1738"),
    _W("the_dawn_of_day", "The Dawn of Day", "J. M. Kennedy", 39955, 583358,
       "7c9cb2f11b2aae8cc84d59806df11123caa17d9562f9065583181f18c51eb3c8"),
    _W("the_genealogy_of_morals", "The Genealogy of Morals", "Horace B. Samuel", 52319, 352761,
       "e4a449585fa09b37e1b2a03f3d6974717c361078793735e362400b9349ebf387"),
    _W("the_joyful_wisdom", "The Joyful Wisdom", "Thomas Common", 52881, 556487,
       "41de396e718134cbd22d7fedb89bcb1c32d5947c055eae765fa32c6a069962a8"),
    _W("the_twilight_of_the_idols", "The Twilight of the Idols; The Antichrist",
       "Anthony M. Ludovici", 52263, 445981,
       "da387b70207e4891d00fec9aeaf4e43fb2713a484bf3dd255495b713ef41d923"),
    _W("the_will_to_power_book_i_and_ii", "The Will to Power, Books I and II",
       "Anthony M. Ludovici", 52914, 544159,
       "911f9a9177b7fbaff7e6d57cd1e5547922001e423edab0e101d5297e378e47fa"),
    _W("the_will_to_power_book_iii_and_iv", "The Will to Power, Books III and IV",
       "Anthony M. Ludovici", 52915, 621113,
       "1fd0506cc6a91ed4e91530dbe9c27347d974d63a04bc401c1e1266c9ba0a48d4"),
    _W("thoughts_out_of_season_part_i", "Thoughts out of Season, Part I", "Anthony M. Ludovici",
       51710, 377598, "19e5ab5c83d88ecaa6366eace93caf1fc327a071317801da091fae457243cdff"),
    _W("thoughts_out_of_season_part_ii", "Thoughts out of Season, Part II", "Adrian Collins",
       38226, 333309, "2a5f34b45296064cfbbbf777fec455f875e73bf56a9f887a8ee5171fd950f5ff"),
    _W("thus_spake_zarathustra", "Thus Spake Zarathustra", "Thomas Common", 1998, 666965,
       "752b96d263a02bbba4f5619188bf815411b5a8a8299b458eeb3fa9d70106ae39"),
    _W("we_philologists", "We Philologists", "J. M. Kennedy", 18267, 134228,
       "7fccd51c2bbdd313414d73feb319236ee67f30ec9a54811c46e180df32e3683c"),
)
BY_KEY: dict[str, Work] = {w.key: w for w in WORKS}
DEFAULT_VAL_WORKS = ("beyond_good_and_evil",)
