/** @loch/certain-map: A typed context map whose type records which keys are present. */
export {};
