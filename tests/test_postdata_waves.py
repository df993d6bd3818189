"""Which post-data statements may run in waves on several sessions, and where each goes."""

from __future__ import annotations

from services import grammar
from services.copy_order import LoadAlone
from services.postdata_waves import FOREIGN_KEY, INDEX, Wave, classify
from tests.test_copy_order import statements


def kinds(text: str) -> list[tuple[str, tuple[tuple[str, str], ...]] | None]:
    out = []
    for s in statements(text):
        w = classify(s, grammar.judge(s))
        out.append(None if w is None else (w.kind, w.tables))
    return out


def test_index_builds_and_keys_are_placed_and_everything_else_waits() -> None:
    assert kinds(
        "CREATE INDEX c_lower ON public.customers USING btree (lower(email));\n"
        "CREATE UNIQUE INDEX p_idx ON ONLY public.p USING btree (v);\n"
        "ALTER TABLE ONLY public.t ADD CONSTRAINT t_pkey PRIMARY KEY (id);\n"
        "ALTER TABLE public.t ADD CONSTRAINT t_c CHECK ((v > 0)) NOT VALID;\n"
        "ALTER TABLE ONLY public.t ADD CONSTRAINT t_c2 CHECK ((v > 0));\n"
        "ALTER TABLE ONLY public.o ADD CONSTRAINT o_fk FOREIGN KEY (c) REFERENCES public.t(id) "
        "DEFERRABLE INITIALLY DEFERRED;\n"
        "CREATE INDEX f_idx ON public.t USING btree (public.f(v));\n"
        "CREATE INDEX g_idx ON public.t USING gin (v public.gin_trgm_ops);\n"
        "ALTER INDEX public.p_idx ATTACH PARTITION public.p1_idx;\n"
        "COMMENT ON INDEX public.c_lower IS 'x';\n"
        "CREATE TRIGGER tr AFTER INSERT ON public.t FOR EACH ROW EXECUTE FUNCTION public.f();\n"
    ) == [
        (INDEX, (("public", "customers"),)),
        (INDEX, (("public", "p"),)),
        (INDEX, (("public", "t"),)),
        (INDEX, (("public", "t"),)),
        None,  # a valid CHECK scans the table (and may call functions): it waits
        (FOREIGN_KEY, (("public", "o"), ("public", "t"))),
        None,  # a function of the dump in the expression could read another table
        None,
        None,
        None,
        None,
    ]


def test_a_wave_keeps_tables_of_one_tree_and_of_one_key_on_one_session() -> None:
    tree = LoadAlone()
    for s in statements(
        "CREATE TABLE public.p (v integer) PARTITION BY RANGE (v);\n"
        "CREATE TABLE public.p1 (v integer);\n"
        "ALTER TABLE ONLY public.p ATTACH PARTITION public.p1 FOR VALUES FROM (0) TO (9);\n"
    ):
        tree.see(s, grammar.judge(s), path_empty=True)
    wave = Wave(FOREIGN_KEY, 2, tree.roots)

    def place(text: str) -> int | None:
        (s,) = statements(text)
        w = classify(s, grammar.judge(s))
        assert w is not None
        return wave.place(w)

    a = place("ALTER TABLE public.a ADD CONSTRAINT a_fk FOREIGN KEY (x) REFERENCES public.p1(v);\n")
    b = place("ALTER TABLE public.b ADD CONSTRAINT b_fk FOREIGN KEY (x) REFERENCES public.c(v);\n")
    assert a != b  # disjoint tables: two sessions
    # The partition's root is the partition's: with a, whatever the spelling.
    assert (
        place("ALTER TABLE public.d ADD CONSTRAINT d_fk FOREIGN KEY (x) REFERENCES public.p(v);\n")
        == a
    )
    # Joining a's group with b's: the wave must end first.
    assert (
        place("ALTER TABLE public.a ADD CONSTRAINT a_fk2 FOREIGN KEY (x) REFERENCES public.c(v);\n")
        is None
    )
