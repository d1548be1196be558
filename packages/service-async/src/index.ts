/** @loch/service-async: Services, MakeService and FactoryStack for composable, hot-reloadable service chains. */
export {};
