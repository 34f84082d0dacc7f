"""The compute pool (service/compute/pipeline.py): every result and every error goes back to its
caller, and a closed pool starts new threads on its next run.
"""

from __future__ import annotations


def test_compute_pool_returns_every_result_and_error_to_its_caller() -> None:
    import asyncio

    from service.compute.lanes import ComputePool

    pool = ComputePool(2)

    def boom() -> None:
        raise ValueError("from a compute thread")

    async def main() -> tuple[list, BaseException | None]:
        results = await asyncio.gather(*(pool.run(lambda i=i: i * i) for i in range(500)))
        try:
            await pool.run(boom)
        except ValueError as error:
            return results, error
        return results, None

    try:
        results, error = asyncio.run(main())
        assert results == [i * i for i in range(500)]
        assert str(error) == "from a compute thread"
        pool.close()  # threads stop; the next run starts new ones
        again, _ = asyncio.run(main())
        assert again == results
    finally:
        pool.close()
