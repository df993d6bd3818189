"""Which post-data statements may run on the data sessions, and what each waits for."""

from __future__ import annotations

from services import grammar
from services.copy_order import LoadAlone
from services.postdata_order import FOREIGN_KEY, INDEX, TableOrder, classify, roots_of
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
        "ALTER TABLE ONLY public.r ADD CONSTRAINT r_ex EXCLUDE USING gist "
        "(during WITH OPERATOR(public.&&));\n"
        "CREATE INDEX o_idx ON public.t USING btree (((v OPERATOR(public.+) 1)));\n"
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
        None,  # an operator of the dump (its function could read another table)
        None,
        None,
        None,
        None,
    ]


def test_a_statement_waits_for_its_tables_loads_and_earlier_statements_only() -> None:
    tree = LoadAlone()
    for s in statements(
        "CREATE TABLE public.p (v integer) PARTITION BY RANGE (v);\n"
        "CREATE TABLE public.p1 (v integer);\n"
        "ALTER TABLE ONLY public.p ATTACH PARTITION public.p1 FOR VALUES FROM (0) TO (9);\n"
    ):
        tree.see(s, grammar.judge(s), path_empty=True)
    order: TableOrder[str] = TableOrder()

    def load(name: str, table: tuple[str, str]) -> list[str]:
        return order.load(name, roots_of((table,), tree.roots))

    def stmt(name: str, text: str) -> list[str]:
        (s,) = statements(text)
        w = classify(s, grammar.judge(s))
        assert w is not None
        return sorted(order.statement(name, roots_of(w.tables, tree.roots)))

    t, p = ("public", "t"), ("public", "p1")
    # Loads of one table (pg_dump's --load-via-partition-root: each partition's rows
    # through the root) wait for nothing.
    assert load("copy t", t) == []
    assert load("copy p1", p) == []
    assert load("copy p via root", ("public", "p")) == []
    assert load("copy c", ("public", "c")) == []
    # An index waits for its table's loads, a partition's for every load into its tree.
    assert stmt(
        "t_pkey", "ALTER TABLE ONLY public.t ADD CONSTRAINT t_pkey PRIMARY KEY (id);\n"
    ) == ["copy t"]
    assert stmt("p_idx", "CREATE INDEX p_idx ON ONLY public.p USING btree (v);\n") == [
        "copy p via root",
        "copy p1",
    ]
    assert stmt("p1_idx", "CREATE INDEX p1_idx ON public.p1 USING btree (v);\n") == ["p_idx"]
    # A foreign key waits for both tables: the last statement on each (which waited for
    # the ones before it) and the loads no statement has waited for yet.
    assert stmt(
        "a_fk",
        "ALTER TABLE ONLY public.c ADD CONSTRAINT a_fk FOREIGN KEY (x) REFERENCES public.t(id);\n",
    ) == ["copy c", "t_pkey"]
    assert stmt(
        "b_fk",
        "ALTER TABLE ONLY public.d ADD CONSTRAINT b_fk FOREIGN KEY (x) REFERENCES public.p1(v);\n",
    ) == ["p1_idx"]
    # A table no earlier job touched: nothing to wait for.
    assert stmt("e_idx", "CREATE INDEX e_idx ON public.e USING btree (v);\n") == []
    # A load after a statement on its table waits for it.
    assert load("copy d", ("public", "d")) == ["b_fk"]
